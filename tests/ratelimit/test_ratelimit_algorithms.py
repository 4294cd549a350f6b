"""The four algorithms in memory, on an injected clock: what each admits, when a refused client may
retry, what the headers say, block durations, and bounded memory."""

import random

import pytest

from backendlab.topics.ratelimit.experiments import boundary_trace
from backendlab.topics.ratelimit import ALGORITHMS, Decision, MemoryLimiter, Rule, memory_limiter
from backendlab.topics.ratelimit.memory import sliding_log

T0 = 1_700_000_000_000  # a multiple of 1000 ms: window edges fall on whole seconds from here


def replay(limiter, times, key="client"):
    return [limiter.hit(key, T0 + t) for t in times]


def admitted(limiter, times, key="client"):
    return [t for t, d in zip(times, replay(limiter, times, key)) if d.allowed]


def busiest(times, window):
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(algorithm="leaky", points=1, duration=1), "unknown algorithm 'leaky'"),
    (dict(algorithm="fixed_window", points=0, duration=1), "points must be at least 1"),
    (dict(algorithm="fixed_window", points=1, duration=0), "duration above 0"),
    (dict(algorithm="fixed_window", points=1, duration=1, block=-1), "block not negative"),
])
def test_a_bad_rule_is_refused_with_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Rule(**kwargs)


def test_fixed_window_admits_twice_the_limit_around_an_edge():
    limiter = memory_limiter("fixed_window", 10, 1.0)
    times = [900 + 5 * i for i in range(20)] + [1000 + 5 * i for i in range(20)]
    got = admitted(limiter, times)
    assert got == times[:10] + times[20:30]
    assert busiest(got, 1000) == 20  # 10 at 0.90-0.945 s, 10 more at 1.000-1.045 s


def test_fixed_window_refusal_waits_for_the_next_window():
    limiter = memory_limiter("fixed_window", 2, 1.0)
    first, second, third = replay(limiter, [100, 200, 300])
    assert (first.allowed, first.remaining, first.reset_ms) == (True, 1, 900)
    assert (second.allowed, second.remaining) == (True, 0)
    assert third == Decision(False, 2, 0, 700, 700)
    assert limiter.hit("client", T0 + 1000).allowed


def test_sliding_log_never_exceeds_the_limit_in_any_window():
    limiter = memory_limiter("sliding_log", 10, 1.0)
    trace = boundary_trace(10, 1.0)
    got = admitted(limiter, trace)
    assert busiest(got, 1000) == 10
    assert got[:10] == trace[:10]


def test_sliding_log_retry_is_when_the_oldest_hit_leaves_the_window():
    limiter = memory_limiter("sliding_log", 3, 1.0)
    decisions = replay(limiter, [0, 200, 400, 500, 999, 1000])
    assert [d.allowed for d in decisions] == [True, True, True, False, False, True]
    assert decisions[3].retry_ms == 500 and decisions[4].retry_ms == 1
    assert decisions[3].reset_ms == 900  # the newest admitted hit leaves at 1400


def test_sliding_log_keeps_at_most_limit_entries():
    state, rule = {}, Rule("sliding_log", 5, 1.0)
    for t in range(0, 3000, 3):
        sliding_log(state, T0 + t, rule)
    assert len(state["log"]) <= 5


def test_sliding_counter_weights_the_previous_window_by_its_overlap():
    limiter = memory_limiter("sliding_counter", 10, 1.0)
    assert len(admitted(limiter, range(0, 10))) == 10  # window [0, 1000) full
    # at 1500 the previous window still weighs 10 * 500/1000 = 5: five more fit
    decisions = replay(limiter, [1500] * 6)
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[0].remaining == 4
    # the sixth needs the weight to fall to 4: 10 * (1000 - e) / 1000 <= 4, at e = 600
    assert decisions[5].retry_ms == 100
    assert limiter.hit("client", T0 + 1600).allowed


def test_sliding_counter_over_a_full_window_waits_into_the_next_one():
    limiter = memory_limiter("sliding_counter", 4, 1.0)
    replay(limiter, [1000, 1001, 1002, 1003])
    refused = limiter.hit("client", T0 + 1500)
    # in [2000, 3000) the 4 hits weigh 4 * (1000 - e) / 1000: room for one at e = 250
    assert (refused.allowed, refused.retry_ms) == (False, 750)
    assert not limiter.hit("client", T0 + 2249).allowed
    assert limiter.hit("client", T0 + 2250).allowed


def test_token_bucket_allows_its_capacity_at_once_then_the_refill_rate():
    limiter = memory_limiter("token_bucket", 10, 1.0)
    decisions = replay(limiter, [0] * 11)
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert decisions[10].retry_ms == 100  # one token per 100 ms
    assert not limiter.hit("client", T0 + 99).allowed
    assert limiter.hit("client", T0 + 100).allowed
    # full again by 1100; from 2100 a hit every 10 ms for 2 s: the 10 in the bucket, then one
    # per 100 ms refilled since 2100, 19 of them by 4090
    assert len(admitted(limiter, range(2100, 4100, 10))) == 10 + 19


def test_keys_are_counted_apart():
    limiter = memory_limiter("sliding_log", 2, 1.0)
    assert [d.allowed for d in replay(limiter, [0, 0, 0], "a")] == [True, True, False]
    assert [d.allowed for d in replay(limiter, [0, 0], "b")] == [True, True]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_block_duration_refuses_after_the_window_has_passed(algorithm):
    limiter = MemoryLimiter(Rule(algorithm, 2, 0.5, block=3.0))
    over = replay(limiter, [0, 0, 0])[2]
    assert (over.allowed, over.retry_ms, over.reset_ms) == (False, 3000, 3000)
    later = limiter.hit("client", T0 + 1000)
    assert (later.allowed, later.retry_ms) == (False, 2000)
    assert limiter.hit("client", T0 + 3000).allowed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_limiter_forgets_keys_once_their_state_expires(algorithm):
    limiter = memory_limiter(algorithm, 3, 1.0)
    for i in range(999):
        limiter.hit(f"client-{i}", T0)
    assert limiter.keys() == 999
    limiter.hit("late", T0 + 5000)  # the 1000th hit sweeps expired state
    assert limiter.keys() == 1


def test_headers_round_waits_up_to_whole_seconds():
    assert Decision(True, 10, 3, 1500).headers() == {
        "RateLimit-Limit": "10", "RateLimit-Remaining": "3", "RateLimit-Reset": "2"}
    refused = Decision(False, 10, 0, 2001, 1)
    assert refused.headers()["Retry-After"] == "1"
    assert Decision(False, 10, 0, 2001, 1001).headers()["Retry-After"] == "2"
    assert refused.headers()["RateLimit-Reset"] == "3"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gcra_decides_exactly_like_the_token_bucket_with_one_number_of_state(seed):
    rng = random.Random(seed)
    bucket, gcra = memory_limiter("token_bucket", 5, 0.5), memory_limiter("gcra", 5, 0.5)
    t = 0
    for _ in range(2000):
        t += rng.choice([0, 0, 1, 7, 50, 99, 100, 101, 499, 500])
        key = rng.choice("ab")
        assert gcra.hit(key, T0 + t) == bucket.hit(key, T0 + t), (key, t)
    assert all(len(state) == 1 for state, _ in gcra._states.values())


def test_gcra_refuses_a_rule_too_large_for_exact_lua_arithmetic():
    with pytest.raises(ValueError, match="use token_bucket"):
        Rule("gcra", 100_000, 60)
