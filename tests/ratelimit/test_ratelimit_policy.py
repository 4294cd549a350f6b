"""When the limiter's Redis does not answer, each stated policy holds: fail open admits, fail closed
refuses, the insurance limiter keeps limiting in memory; and none of them waits long."""

import time

import pytest

from backendlab import processes
from backendlab.topics.ratelimit import (FailurePolicy, RedisLimiter, ResilientLimiter, Rule,
                                         StoreUnavailable)
from backendlab.topics.ratelimit.server import redis_connection


@pytest.fixture
def down_limiter():
    """A sliding-log limiter (3 per minute) whose Redis is a port nothing listens on."""
    client = redis_connection(f"redis://127.0.0.1:{processes.free_port()}/0")
    yield RedisLimiter(client, Rule("sliding_log", 3, 60), "policy-test")
    client.close()


def test_fail_open_admits_everything(down_limiter):
    limiter = ResilientLimiter(down_limiter, "open")
    assert all(limiter.hit("k").allowed for _ in range(10))
    assert limiter.store_errors == 10


def test_fail_closed_refuses_with_an_error_naming_the_store(down_limiter):
    limiter = ResilientLimiter(down_limiter, FailurePolicy.CLOSED)
    with pytest.raises(StoreUnavailable, match="rate-limit store unavailable"):
        limiter.hit("k")


def test_insurance_limits_in_memory_per_key(down_limiter):
    limiter = ResilientLimiter(down_limiter, "insurance")
    assert [limiter.hit("a").allowed for _ in range(5)] == [True] * 3 + [False] * 2
    assert limiter.hit("b").allowed


def test_a_dead_store_costs_milliseconds_not_seconds(down_limiter):
    limiter = ResilientLimiter(down_limiter, "open")
    started = time.perf_counter()
    for _ in range(20):
        limiter.hit("k")
    assert time.perf_counter() - started < 2.0


def test_an_unknown_policy_is_refused(down_limiter):
    with pytest.raises(ValueError, match="'sometimes' is not a valid FailurePolicy"):
        ResilientLimiter(down_limiter, "sometimes")
