"""Lab 06's checks: a sliding-window-log limiter written as one Lua script with a Python wrapper.

The learner's `hit(client, key, limit, window_ms, now_ms)` returns `(allowed, retry_after_ms)`.
A hit at time t counts against the key for times t <= now < t + window_ms. The checks replay
exact timelines (edges, Retry-After), count round trips, inspect TTLs and sizes of the keys it
writes, and run a burst from several processes at once. Keys live under a unique prefix in the
suite's Redis and are deleted afterwards.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from backendlab import processes
from backendlab.checks import Check, CheckFailed, Report, describe_error, run_lab
from backendlab.checks.child import write_module
from backendlab.measure import RedisRoundTrips
from backendlab.services.redis import delete_keys, redis_url

BURST_PROCESSES = 4
BURST_HITS = 40
BURST_LIMIT = 50

# One burst process: import the learner's hit, wait for the common start, hit, print the admitted.
_WORKER = """
import json, sys, time
import redis
sys.path.insert(0, sys.argv[1])
from learner import hit
url, key = sys.argv[2], sys.argv[3]
limit, window, hits, start = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
client = redis.Redis.from_url(url)
client.ping()
time.sleep(max(0.0, start - time.time()))
now = lambda: time.time_ns() // 1_000_000
print(json.dumps(sum(bool(hit(client, key, limit, window, now())[0]) for _ in range(hits))))
"""


class _Lab:
    """The learner's function, a Redis client, and a fresh key per check."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "hit")
        self.url = redis_url()
        self.client = redis.Redis.from_url(self.url)
        self.prefix = f"backendlab:lab06:{uuid.uuid4().hex[:10]}"

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def call(self, key: str, limit: int, window: int, now: int, client=None) -> tuple[bool, int]:
        try:
            answer = self.fn(client or self.client, key, limit, window, now)
        except NotImplementedError as exc:
            raise CheckFailed(f"{self.name} is not written yet ({exc})") from None
        except Exception as exc:
            raise CheckFailed(f"{self.name} raised {describe_error(exc, self.fn)}") from None
        try:
            allowed, retry = answer
            return bool(allowed), int(retry)
        except (TypeError, ValueError):
            raise CheckFailed(f"{self.name} returned {answer!r}; return (allowed, "
                              "retry_after_ms), e.g. (True, 0) or (False, 250)") from None

    def replay(self, name: str, limit: int, window: int, times: list[int]) -> list[tuple[bool, int]]:
        key = self.key(name)
        base = (time.time_ns() // 1_000_000 // 1000) * 1000
        return [self.call(key, limit, window, base + t) for t in times]

    def close(self) -> None:
        delete_keys(self.client, self.prefix)
        self.client.close()


def _expect_timeline(lab: _Lab, name: str, limit: int, window: int,
                     steps: list[tuple[int, bool, int]], advice: str) -> None:
    got = lab.replay(name, limit, window, [t for t, _, _ in steps])
    for (t, allowed, retry), (ok, wait) in zip(steps, got):
        if (ok, wait) != (allowed, retry):
            raise CheckFailed(f"limit {limit} per {window} ms, hit at t={t} ms: expected "
                              f"({allowed}, {retry}), got ({ok}, {wait}): {advice}")


def _edges(lab: _Lab) -> str:
    steps = [(0, True, 0), (999, True, 0), (999, False, 1), (1000, True, 0), (1998, False, 1),
             (1999, True, 0), (1999, False, 1)]
    _expect_timeline(lab, "edges", 2, 1000, steps,
                     "a hit at t counts while t <= now < t + window: remove entries with score "
                     "<= now - window before counting")
    return "admitted exactly when the oldest hit leaves the window"


def _retry_after(lab: _Lab) -> str:
    steps = [(0, True, 0), (200, True, 0), (400, True, 0), (500, False, 500), (900, False, 100),
             (1000, True, 0), (1100, False, 100), (1200, True, 0)]
    _expect_timeline(lab, "retry", 3, 1000, steps,
                     "a refused hit must wait until the oldest hit in the window expires: "
                     "oldest + window - now (ZRANGE key 0 0 WITHSCORES gives the oldest); a "
                     "refused hit is not recorded")
    return "Retry-After is oldest + window - now"


def _same_millisecond(lab: _Lab) -> str:
    got = lab.replay("same-ms", 5, 1000, [0] * 8)
    admitted = sum(ok for ok, _ in got)
    if admitted != 5:
        raise CheckFailed(f"8 hits in the same millisecond with limit 5 admitted {admitted}: two "
                          "hits with the same score need different members, or ZADD overwrites "
                          "the first (add a unique suffix to the member)")
    return "8 hits in one millisecond, 5 admitted"


def _ttl(lab: _Lab) -> str:
    window = 5000
    for index in range(3):
        lab.call(lab.key(f"ttl:{index}"), 2, window, time.time_ns() // 1_000_000)
    names = list(lab.client.scan_iter(match=f"{lab.prefix}:ttl:*"))
    if not names:
        raise CheckFailed("no key was written under the key you were given")
    for name in names:
        ttl = lab.client.pttl(name)
        if ttl < 0:
            raise CheckFailed(f"key {name.decode()} has no TTL: set PEXPIRE key window in the "
                              "same script, or an idle client's key stays in Redis forever")
        if ttl > window:
            raise CheckFailed(f"key {name.decode()} lives {ttl} ms, longer than the {window} ms "
                              "window: the key is useless after one window")
    return f"{len(names)} keys, each with a TTL of at most the window"


def _bounded(lab: _Lab) -> str:
    limit, key = 5, lab.key("bounded")
    lab.replay("bounded", limit, 1000, list(range(0, 3000, 3)))
    sizes = {}
    for name in lab.client.scan_iter(match=f"{key}*"):
        kind = lab.client.type(name).decode()
        size = {"zset": lab.client.zcard, "list": lab.client.llen, "hash": lab.client.hlen,
                "set": lab.client.scard}.get(kind, lambda _: 1)(name)
        sizes[name.decode()] = size
    biggest = max(sizes.values(), default=0)
    if biggest > limit:
        raise CheckFailed(f"after 1000 hits (limit {limit}) a key holds {biggest} entries: store "
                          "admitted hits only, and drop entries older than the window")
    return f"1000 hits, at most {biggest} entries kept (limit {limit})"


def _one_round_trip(lab: _Lab) -> str:
    counted = RedisRoundTrips(lab.url)
    try:
        lab.call(lab.key("trips"), 3, 1000, time.time_ns() // 1_000_000, counted.client)
        before, hits = counted.count, 20
        for _ in range(hits):
            lab.call(lab.key("trips"), 3, 1000, time.time_ns() // 1_000_000, counted.client)
        trips = (counted.count - before) / hits
    finally:
        counted.close()
    if trips > 1:
        raise CheckFailed(f"{trips:.1f} round trips per decision: do the whole decision in one "
                          "script call, or concurrent clients interleave between your calls")
    return "one round trip per decision"


def _concurrent_burst(lab: _Lab) -> str:
    key = lab.key("burst")
    with tempfile.TemporaryDirectory(prefix="backendlab-lab06-") as folder:
        write_module(lab.fn, Path(folder, "learner.py"))
        start = time.time() + 1.5
        workers = [processes.start(f"lab06-burst-{i}", [
            sys.executable, "-c", _WORKER, folder, lab.url, key, str(BURST_LIMIT), "10000",
            str(BURST_HITS), str(start)]) for i in range(BURST_PROCESSES)]
        try:
            counts = []
            for worker in workers:
                worker.popen.wait(timeout=60)
                out = worker.output().strip().splitlines()
                if worker.popen.returncode != 0 or not out:
                    raise CheckFailed(f"a burst process failed: {' '.join(out[-1:]) or 'no output'}")
                counts.append(json.loads(out[-1]))
        finally:
            for worker in workers:
                worker.stop()
    admitted = sum(counts)
    total = BURST_PROCESSES * BURST_HITS
    if admitted != BURST_LIMIT:
        raise CheckFailed(f"{BURST_PROCESSES} processes sent {total} hits at once with limit "
                          f"{BURST_LIMIT}: {admitted} were admitted; read, decide and write in "
                          "one Lua script so no other client runs in between")
    return f"{total} hits from {BURST_PROCESSES} processes, exactly {admitted} admitted"


SUITE = [
    Check("window edges", _edges),
    Check("Retry-After", _retry_after),
    Check("hits in the same millisecond", _same_millisecond),
    Check("every key has a TTL", _ttl),
    Check("memory per key is bounded", _bounded),
    Check("one round trip per decision", _one_round_trip),
    Check("exact under a burst from several processes", _concurrent_burst),
]


def check(fn, only: str | list[str] | None = None) -> Report:
    """Run lab 06's checks (or the ones named in `only`) on `fn`, your hit; deletes every key
    they wrote."""
    return run_lab(f"Lab 06: {getattr(fn, '__name__', 'hit')}", SUITE, lambda: _Lab(fn), only)


def try_it(fn) -> None:
    """Replay a short timeline (limit 2 per 1000 ms) through `fn` and print each answer."""
    lab = _Lab(fn)
    try:
        steps = [0, 300, 600, 1000, 1200]
        print("limit 2 per 1000 ms")
        for t, (ok, retry) in zip(steps, lab.replay("try", 2, 1000, steps)):
            print(f"  t={t:5d} ms  allowed={ok!s:5}  retry_after_ms={retry}")
        print("expected: True, True, False (retry 400), True, False (retry 100)")
    except CheckFailed as exc:
        print(f"FAIL: {exc}")
    finally:
        lab.close()
