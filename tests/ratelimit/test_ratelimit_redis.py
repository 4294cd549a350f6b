"""The Lua limiters on every Redis engine (real, redis-server, fakeredis): they decide exactly like
the in-memory algorithms, stay exact under concurrency where GET-then-INCR does not, put a TTL on
every key, and use Redis's clock."""

import random
import time

import pytest

from backendlab.topics.ratelimit.experiments.races import burst
from backendlab.topics.ratelimit import (ALGORITHMS, GetThenIncrLimiter, MemoryLimiter, RedisLimiter,
                                         Rule)
from backendlab.services import redis_client
from backendlab.services.redis import delete_keys

T0 = 1_700_000_000_000


@pytest.fixture
def client(suite_redis, unique):
    conn = redis_client(max_connections=64)
    yield conn
    delete_keys(conn, unique)
    conn.close()


def random_trace(seed: int, window: int) -> list[tuple[str, int]]:
    """(key, time) pairs: bursts, gaps and edges over four windows, two keys interleaved."""
    rng = random.Random(seed)
    t, trace = 0, []
    while t < 4 * window:
        t += rng.choice([0, 0, 1, 3, window // 20, window // 3, window - 1, window])
        trace.append((rng.choice("ab"), t))
    return trace


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lua_decides_exactly_like_memory(client, unique, algorithm, seed):
    rule = Rule(algorithm, 4, 0.2)
    memory, shared = MemoryLimiter(rule), RedisLimiter(client, rule, unique)
    for key, t in random_trace(seed, rule.window_ms):
        assert shared.hit(key, T0 + t) == memory.hit(key, T0 + t), (key, t)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_lua_is_exact_under_a_concurrent_burst(client, unique, algorithm):
    limiter = RedisLimiter(client, Rule(algorithm, 50, 3600), unique)
    assert burst(limiter, "burst", 300, 20) == 50


def test_get_then_incr_over_admits_the_same_burst(client, unique):
    # The race needs two clients between one GET and its write at the same moment, which thread
    # scheduling decides: one burst on fakeredis with a core busy admitted exactly 50. Over five
    # bursts on fresh keys, at least one over-admits; the Lua script above never does.
    limiter = GetThenIncrLimiter(client, Rule("fixed_window", 50, 3600), unique)
    admitted = [burst(limiter, f"burst-{n}", 300, 20) for n in range(5)]
    assert max(admitted) > 50, admitted


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_key_a_script_writes_has_a_ttl(client, unique, algorithm):
    # A 10 s window holds the 10 hits (a few ms each, under 1 s on a busy core on fakeredis),
    # so each key's fourth hit is refused and blocks it: the count does not depend on the speed.
    rule = Rule(algorithm, 3, 10.0, block=2.0)
    limiter = RedisLimiter(client, rule, unique)
    decisions = [limiter.hit(f"k{i % 2}") for i in range(10)]
    assert not all(d.allowed for d in decisions)
    names = list(client.scan_iter(match=f"{unique}:*"))
    assert any(name.endswith(":blocked") for name in names)
    for name in names:
        assert 0 < client.pttl(name) <= max(2 * rule.window_ms, rule.block_ms), name


def test_a_refused_client_is_told_when_to_retry_and_gets_in_then(client, unique):
    # Three hits back to back (ms apart) fall in one 1 s window even on a busy machine.
    limiter = RedisLimiter(client, Rule("sliding_log", 2, 1.0), unique)
    assert limiter.hit("k").allowed and limiter.hit("k").allowed
    refused = limiter.hit("k")
    assert not refused.allowed and 0 < refused.retry_ms <= 1000
    assert refused.headers()["Retry-After"] == "1"
    time.sleep(refused.retry_ms / 1000 + 0.02)
    assert limiter.hit("k").allowed


def test_block_duration_outlasts_the_window(client, unique):
    # Two hits back to back fall in one 0.3 s window even on a busy machine; the sleep then
    # passes the window, and the block (1.5 s from the refusal) still holds.
    limiter = RedisLimiter(client, Rule("fixed_window", 1, 0.3, block=1.5), unique)
    assert limiter.hit("k").allowed
    over = limiter.hit("k")
    assert (over.allowed, over.retry_ms) == (False, 1500)
    time.sleep(0.4)
    later = limiter.hit("k")
    assert not later.allowed and 0 < later.retry_ms <= 1100
    time.sleep(later.retry_ms / 1000 + 0.05)
    assert limiter.hit("k").allowed


def test_without_a_time_argument_the_script_uses_redis_clock(client, unique):
    limiter = RedisLimiter(client, Rule("fixed_window", 5, 10), unique)
    seconds, micros = client.time()
    limiter.hit("k")
    (name,) = client.scan_iter(match=f"{unique}:*")
    start = int(name.rsplit(":", 1)[1])
    redis_now = seconds * 1000 + micros // 1000
    assert start in {redis_now - redis_now % 10_000, redis_now - redis_now % 10_000 + 10_000}
