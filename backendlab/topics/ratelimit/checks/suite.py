"""Lab 06's checks: exact timelines (the window's edges, Retry-After, hits in one millisecond),
the keys' TTLs and sizes, one round trip per decision, and a burst from several processes.
"""

from __future__ import annotations

import time

from backendlab.checks import Check, CheckFailed
from backendlab.measure import RedisRoundTrips
from backendlab.topics.ratelimit.checks.burst import concurrent_burst
from backendlab.topics.ratelimit.checks.harness import Lab


def _expect_timeline(lab: Lab, name: str, limit: int, window: int,
                     steps: list[tuple[int, bool, int]], advice: str) -> None:
    got = lab.replay(name, limit, window, [t for t, _, _ in steps])
    for (t, allowed, retry), (ok, wait) in zip(steps, got):
        if (ok, wait) != (allowed, retry):
            raise CheckFailed(f"limit {limit} per {window} ms, hit at t={t} ms: expected "
                              f"({allowed}, {retry}), got ({ok}, {wait}): {advice}")


def _edges(lab: Lab) -> str:
    steps = [(0, True, 0), (999, True, 0), (999, False, 1), (1000, True, 0), (1998, False, 1),
             (1999, True, 0), (1999, False, 1)]
    _expect_timeline(lab, "edges", 2, 1000, steps,
                     "a hit at t counts while t <= now < t + window: remove entries with score "
                     "<= now - window before counting")
    return "admitted exactly when the oldest hit leaves the window"


def _retry_after(lab: Lab) -> str:
    steps = [(0, True, 0), (200, True, 0), (400, True, 0), (500, False, 500), (900, False, 100),
             (1000, True, 0), (1100, False, 100), (1200, True, 0)]
    _expect_timeline(lab, "retry", 3, 1000, steps,
                     "a refused hit must wait until the oldest hit in the window expires: "
                     "oldest + window - now (ZRANGE key 0 0 WITHSCORES gives the oldest); a "
                     "refused hit is not recorded")
    return "Retry-After is oldest + window - now"


def _same_millisecond(lab: Lab) -> str:
    got = lab.replay("same-ms", 5, 1000, [0] * 8)
    admitted = sum(ok for ok, _ in got)
    if admitted != 5:
        raise CheckFailed(f"8 hits in the same millisecond with limit 5 admitted {admitted}: two "
                          "hits with the same score need different members, or ZADD overwrites "
                          "the first (add a unique suffix to the member)")
    return "8 hits in one millisecond, 5 admitted"


def _ttl(lab: Lab) -> str:
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


def _bounded(lab: Lab) -> str:
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


def _one_round_trip(lab: Lab) -> str:
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


SUITE = [
    Check("window edges", _edges),
    Check("Retry-After", _retry_after),
    Check("hits in the same millisecond", _same_millisecond),
    Check("every key has a TTL", _ttl),
    Check("memory per key is bounded", _bounded),
    Check("one round trip per decision", _one_round_trip),
    Check("exact under a burst from several processes", concurrent_burst),
]
