"""Lab 05's checks: the solution passes every one and leaves no key behind; each typical mistake
fails exactly the check that is about it, with a hint that names the fix."""

import contextlib
import json
import random
import time
from urllib.parse import quote

import pytest
import redis

from backendlab.topics.caching import checks as lab05
from backendlab.services import redis_client
from helpers.solutions import PROJECT, solution_module

NAMES = [check.name for check in lab05.SUITE]


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    return solution_module(PROJECT / "solutions" / "05-caching.ipynb", tmp_path_factory.mktemp("s05"))


def verdicts(report) -> dict[str, bool]:
    return {result.name: result.passed for result in report.results}


def only_failing(report, name: str) -> str:
    """The hint of check `name`, after asserting that it alone failed."""
    assert verdicts(report) == {n: n != name for n in NAMES}, str(report)
    return next(r.message for r in report.results if r.name == name)


def lab_keys() -> list[str]:
    with contextlib.closing(redis_client()) as client:
        return list(client.scan_iter(match="backendlab:lab05:*", count=1000))


def test_the_solution_passes_every_check_and_leaves_no_key(suite_redis_sql, solution):
    report = lab05.check(solution.cache_key, solution.get_or_load)
    assert report.passed, str(report)
    assert lab_keys() == []


def test_only_runs_the_named_checks_and_leaves_no_key(suite_redis_sql, solution):
    report = lab05.check(solution.cache_key, solution.get_or_load, only=[NAMES[3], NAMES[0]])
    assert [result.name for result in report.results] == [NAMES[0], NAMES[3]], str(report)
    assert report.passed and lab_keys() == []


def test_try_it_shows_keys_and_a_miss_then_a_hit(suite_redis_sql, solution, capsys):
    lab05.try_it(solution.cache_key, solution.get_or_load)
    out = capsys.readouterr().out
    assert "-> 'products:category=books:page=2:page_size=10'" in out
    assert "first call -> {'items': ['a', 'b']}; load() has run 1 time(s)" in out
    assert "second call -> {'items': ['a', 'b']}; load() has run 1 time(s)" in out
    assert lab_keys() == []


# Wrong keys ------------------------------------------------------------------------------------

def key_without_page(resource, params, user=None):
    kept = {k: v for k, v in params.items() if k != "page"}
    return ":".join([*(["user", str(user)] if user else []), resource,
                     *(f"{k}={quote(str(kept[k]), safe='')}" for k in sorted(kept))])


def key_in_arrival_order(resource, params, user=None):
    return ":".join([*(["user", str(user)] if user else []), resource,
                     *(f"{k}={quote(str(v), safe='')}" for k, v in params.items())])


def key_without_user(resource, params, user=None):
    return ":".join([resource, *(f"{k}={quote(str(params[k]), safe='')}" for k in sorted(params))])


def key_with_user_as_a_parameter(resource, params, user=None):
    merged = {**params, **({"user": user} if user else {})}
    return ":".join([resource, *(f"{k}={quote(str(merged[k]), safe='')}" for k in sorted(merged))])


def key_without_escaping(resource, params, user=None):
    return ":".join([*(["user", str(user)] if user else []), resource,
                     *(f"{k}={params[k]}" for k in sorted(params))])


def key_without_resource(resource, params, user=None):
    return ":".join([*(["user", str(user)] if user else []),
                     *(f"{k}={quote(str(params[k]), safe='')}" for k in sorted(params))])


@pytest.mark.parametrize("wrong, check, hint", [
    (key_without_page, "keys: different questions never share a key", "every parameter that changes"),
    (key_in_arrival_order, "keys: one key per question, whatever the parameter order",
     "sort the parameter names"),
    (key_without_user, "keys: no cross-user leaks", "put the user in the key"),
    (key_with_user_as_a_parameter, "keys: no cross-user leaks", "scope private keys apart"),
    (key_without_escaping, "keys: different questions never share a key", "must be escaped"),
    (key_without_resource, "keys: different questions never share a key",
     "start the key with the resource name"),
])
def test_a_wrong_key_fails_its_check_with_a_hint(suite_redis_sql, solution, wrong, check, hint):
    message = only_failing(lab05.check(wrong, solution.get_or_load), check)
    assert hint in message


# Wrong cache-aside helpers ---------------------------------------------------------------------

def jittered(ttl: float, jitter: float) -> int:
    return int(ttl * 1000 * (1 + random.uniform(0, jitter)))


def loads_every_time(client, key, load, ttl=30.0, jitter=0.1):
    value = load()
    with contextlib.suppress(redis.RedisError):
        client.set(key, json.dumps(value), px=jittered(ttl, jitter))
    return value


def without_single_flight(name, expiry_ms):
    """Cache-aside with a fallback but no stampede protection; stored with px=expiry_ms(ttl, jitter)."""

    def get_or_load(client, key, load, ttl=30.0, jitter=0.1):
        with contextlib.suppress(redis.RedisError):
            if (cached := client.get(key)) is not None:
                return json.loads(cached)
        value = load()
        with contextlib.suppress(redis.RedisError):
            client.set(key, json.dumps(value), px=expiry_ms(ttl, jitter))
        return value

    get_or_load.__name__ = name
    return get_or_load


no_ttl = without_single_flight("no_ttl", lambda ttl, jitter: None)
no_jitter = without_single_flight("no_jitter", lambda ttl, jitter: int(ttl * 1000))
plain_cache_aside = without_single_flight("plain_cache_aside", jittered)


def wait_for_holder(client, key, load):
    """What a request that lost the lock does: poll for the holder's value for 5 s, then load."""
    for _ in range(250):
        time.sleep(0.02)
        if (cached := client.get(key)) is not None:
            return json.loads(cached)
    return load()


def lock_without_ttl(client, key, load, ttl=30.0, jitter=0.1):
    try:
        if (cached := client.get(key)) is not None:
            return json.loads(cached)
        holder = client.set(key + ":lock", "1", nx=True)
    except redis.RedisError:
        return load()
    if not holder:
        return wait_for_holder(client, key, load)
    value = load()
    with contextlib.suppress(redis.RedisError):
        client.set(key, json.dumps(value), px=jittered(ttl, jitter))
        client.delete(key + ":lock")
    return value


def trusts_redis(client, key, load, ttl=30.0, jitter=0.1):
    """Single flight, TTL and jitter, but any Redis error escapes."""
    if (cached := client.get(key)) is not None:
        return json.loads(cached)
    lock = client.lock(key + ":lock", timeout=10, blocking=False)
    if lock.acquire():
        try:
            value = load()
            client.set(key, json.dumps(value), px=jittered(ttl, jitter))
            return value
        finally:
            lock.release()
    return wait_for_holder(client, key, load)


def catches_only_the_read(client, key, load, ttl=30.0, jitter=0.1):
    """Falls back when the first GET fails, but not when Redis refuses the SET."""
    try:
        cached = client.get(key)
    except redis.RedisError:
        return load()
    if cached is not None:
        return json.loads(cached)
    return trusts_redis(client, key, load, ttl, jitter)


def unguarded_store(name, store):
    """Single flight that fails open (a refused lock counts as held), then `store(client, key,
    json, px)` unguarded: a Redis that refuses writes makes the store's error escape."""

    def get_or_load(client, key, load, ttl=30.0, jitter=0.1):
        try:
            if (cached := client.get(key)) is not None:
                return json.loads(cached)
        except redis.RedisError:
            return load()
        lock = client.lock(key + ":lock", timeout=10, blocking=False)
        try:
            holder = lock.acquire()
        except redis.RedisError:
            holder = True
        if not holder:
            return wait_for_holder(client, key, load)
        try:
            value = load()
            store(client, key, json.dumps(value), jittered(ttl, jitter))
            return value
        finally:
            with contextlib.suppress(redis.RedisError):
                lock.release()

    get_or_load.__name__ = name
    return get_or_load


def store_in_pipeline(transaction):
    def store(client, key, value, px):
        with client.pipeline(transaction=transaction) as pipe:
            pipe.set(key, value, px=px).execute()
    return store


UNGUARDED_WRITES = [
    unguarded_store("setex", lambda c, k, v, px: c.setex(k, max(1, px // 1000), v)),
    unguarded_store("psetex", lambda c, k, v, px: c.psetex(k, px, v)),
    unguarded_store("multi_exec", store_in_pipeline(transaction=True)),
    unguarded_store("pipeline", store_in_pipeline(transaction=False)),
    unguarded_store("lua_script", lambda c, k, v, px: c.eval(
        "return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])", 1, k, v, px)),
]


@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")  # learners use it
@pytest.mark.parametrize("wrong", UNGUARDED_WRITES, ids=lambda helper: helper.__name__)
def test_any_unguarded_write_fails_the_refused_writes_check(suite_redis_sql, solution, wrong):
    report = lab05.check(solution.cache_key, wrong)
    assert "Redis refuses writes" in only_failing(report, "Redis down: answers from the database")
    assert lab_keys() == []


@pytest.mark.parametrize("wrong, failing, hint", [
    (loads_every_time, {"cache-aside: a miss loads, a hit does not",
                        "stampede: one load for a burst on a cold key"},
     "the second call must be served from Redis"),
    (no_ttl, {"TTL with jitter on every key", "stampede: one load for a burst on a cold key"},
     "have no TTL"),
    (no_jitter, {"TTL with jitter on every key", "stampede: one load for a burst on a cold key"},
     "add the random jitter"),
    (plain_cache_aside, {"stampede: one load for a burst on a cold key"},
     "concurrent calls on a cold key ran load()"),
    (lock_without_ttl, {"stampede: one load for a burst on a cold key"}, "had no TTL"),
    (trusts_redis, {"Redis down: answers from the database"}, "Redis is unreachable"),
    (catches_only_the_read, {"Redis down: answers from the database"}, "refuses writes"),
])
def test_a_wrong_helper_fails_its_checks_with_a_hint(suite_redis_sql, solution, wrong, failing, hint):
    report = lab05.check(solution.cache_key, wrong)
    assert {n for n, ok in verdicts(report).items() if not ok} == failing, str(report)
    assert any(hint in r.message for r in report.results if not r.passed), str(report)
    assert lab_keys() == [], "the check must delete every key it made, lock keys too"


def test_a_helper_that_raises_gets_one_line_per_check(suite_redis_sql, solution):
    def broken(client, key, load, ttl=30.0, jitter=0.1):
        raise NotImplementedError("write get_or_load: see the task above")

    report = lab05.check(solution.cache_key, broken)
    failed = [r for r in report.results if not r.passed]
    assert [r.name for r in failed] == NAMES[3:]
    assert all("NotImplementedError: write get_or_load" in r.message and "\n" not in r.message
               for r in failed)
