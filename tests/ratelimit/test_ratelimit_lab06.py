"""Lab 06's checks on every Redis engine: the worked solution passes them all, and each typical wrong
answer fails the check aimed at it, with a hint that says what to change."""


import pytest

from backendlab.topics.ratelimit import checks as lab06
from helpers.solutions import PROJECT, solution_module

# Wrong answers, each a variation of the solution's script. Module-level strings travel with the
# function to the burst processes, as a learner's constants would.
TRIM_AND_COUNT = """
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
"""
RECORD = """
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
"""
NO_TTL = TRIM_AND_COUNT + "redis.call('ZADD', KEYS[1], now, ARGV[4])\nreturn {1, 0}\n"
SAME_MEMBER = TRIM_AND_COUNT + RECORD.replace("ARGV[4]", "now")
EDGE_OFF_BY_ONE = TRIM_AND_COUNT.replace("now - window)", "now - window - 1)") + RECORD
RETRY_IS_WINDOW = TRIM_AND_COUNT.replace("tonumber(oldest[2]) + window - now", "window") + RECORD
NEVER_TRIMMED = """
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), '+inf') >= limit then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf',
                            'WITHSCORES', 'LIMIT', 0, 1)
  return {0, tonumber(oldest[2]) + window - now}
end
""" + RECORD
COUNTS_REFUSED = """
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
if redis.call('ZCARD', KEYS[1]) > limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
return {1, 0}
"""


def scripted(script: str):
    def hit(client, key, limit, window_ms, now_ms):
        import uuid
        allowed, retry = client.eval(script, 1, key, limit, window_ms, now_ms, uuid.uuid4().hex)
        return bool(allowed), int(retry)
    return hit


def two_round_trips(client, key, limit, window_ms, now_ms):
    """Count in one call, record in another: correct alone, racy under a burst."""
    import uuid
    pipe = client.pipeline()
    pipe.zremrangebyscore(key, "-inf", now_ms - window_ms)
    pipe.zrange(key, 0, 0, withscores=True)
    pipe.zcard(key)
    _, oldest, count = pipe.execute()
    if count >= limit:
        return False, int(oldest[0][1]) + window_ms - now_ms
    pipe.zadd(key, {uuid.uuid4().hex: now_ms})
    pipe.pexpire(key, window_ms)
    pipe.execute()
    return True, 0


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    path = PROJECT / "solutions" / "06-rate-limiting.ipynb"
    return solution_module(path, tmp_path_factory.mktemp("lab06")).hit


def test_the_solution_passes_every_check(suite_redis, solution):
    report = lab06.check(solution)
    assert report.passed, str(report)
    assert len(report.results) == len(lab06.SUITE)


WRONG = [
    (NO_TTL, "every key has a TTL", "has no TTL: set PEXPIRE key window in the same script"),
    (SAME_MEMBER, "hits in the same millisecond", "need different members"),
    (EDGE_OFF_BY_ONE, "window edges", "remove entries with score <= now - window"),
    (RETRY_IS_WINDOW, "Retry-After", "oldest + window - now"),
    (NEVER_TRIMMED, "memory per key is bounded", "drop entries older than the window"),
    (COUNTS_REFUSED, "Retry-After", "a refused hit is not recorded"),
]


@pytest.mark.parametrize("script, name, hint", WRONG, ids=[f"{w[1]}-{i}" for i, w in enumerate(WRONG)])
def test_a_typical_mistake_fails_its_check_with_a_hint(suite_redis, solution, script, name, hint):
    (result,) = lab06.check(scripted(script), only=[name]).results
    assert not result.passed and hint in result.message, result.message
    assert lab06.check(solution, only=[name]).passed


def test_two_round_trips_are_counted(suite_redis):
    (result,) = lab06.check(two_round_trips, only=["one round trip per decision"]).results
    trips = float(result.message.split(" round trips per decision: ")[0])
    assert not result.passed and trips > 1, result.message


def test_an_unwritten_or_crashing_hit_gets_a_hint_not_a_traceback(suite_redis):
    def hit(client, key, limit, window_ms, now_ms):
        raise NotImplementedError("write hit")

    def wrong_shape(client, key, limit, window_ms, now_ms):
        return "yes"

    report = lab06.check(hit)
    assert not any(r.passed for r in report.results)
    assert report.results[0].message == "hit is not written yet (write hit)"
    (result,) = lab06.check(wrong_shape, only=["window edges"]).results
    assert result.message.startswith("wrong_shape returned 'yes'; return (allowed, retry_after_ms)")


def test_try_it_prints_the_answers_next_to_the_expected_ones(suite_redis, solution, capsys):
    lab06.try_it(solution)
    out = capsys.readouterr().out
    assert "t=  600 ms  allowed=False  retry_after_ms=400" in out
    assert "expected: True, True, False (retry 400), True, False (retry 100)" in out


def test_an_unknown_check_name_is_refused():
    with pytest.raises(ValueError, match="no check named"):
        lab06.check(two_round_trips, only=["nope"])
