"""Experiment 3: a GET-then-INCR limiter vs the Lua script, under a concurrent burst and under
traffic on keys that keep expiring."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from backendlab import plots
from backendlab.topics.ratelimit.experiments.common import run_prefix
from backendlab.topics.ratelimit import GetThenIncrLimiter, RedisLimiter, Rule
from backendlab.services import redis_client

LIMITERS = {"GET then INCR": GetThenIncrLimiter, "Lua script": RedisLimiter}


@dataclass
class RaceRun:
    """Admissions in one concurrent burst; keys left without a TTL after churning short windows."""

    limit: int
    burst: int
    admitted: dict[str, int]
    churn_keys: int
    keys_without_ttl: dict[str, int]

    def over_admitted(self, name: str) -> int:
        return self.admitted[name] - self.limit

    def summary(self) -> dict:
        return {name: {"admitted": self.admitted[name],
                       "over_admitted": self.over_admitted(name),
                       "keys_without_ttl": self.keys_without_ttl[name]}
                for name in self.admitted} | {"limit": self.limit, "burst": self.burst,
                                              "churned_keys": self.churn_keys}

    def plot(self):
        """Admissions in the burst and keys left without a TTL, per limiter."""
        return plots.grouped_bars({f"admitted of {self.burst} (limit {self.limit})": self.admitted,
                                   f"keys left without a TTL (of {self.churn_keys})": self.keys_without_ttl},
                                  ylabel="count",
                                  title=f"{self.burst} requests at once, limit {self.limit}, admitted: "
                                        + ", ".join(f"{name} {n}" for name, n in self.admitted.items()))


def burst(limiter, key: str, requests: int, threads: int) -> int:
    """`requests` hits on `key` from `threads` threads released together; how many were admitted."""
    gate = threading.Barrier(threads)

    def client(share: int) -> int:
        gate.wait()
        return sum(limiter.hit(key).allowed for _ in range(share))

    shares = [requests // threads + (i < requests % threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(client, shares))


def churn(limiter, keys: list[str], seconds: float, threads: int) -> None:
    """`threads` threads hit `keys` round-robin for `seconds`, crossing many window edges."""
    stop_at = time.perf_counter() + seconds

    def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            limiter.hit(keys[i % len(keys)])
            i += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(client, range(threads)))


def keys_without_ttl(client, prefix: str) -> int:
    return sum(1 for name in client.scan_iter(match=f"{prefix}:*", count=500)
               if client.pttl(name) == -1)


def races(limit: int = 100, requests: int = 500, threads: int = 25, churn_seconds: float = 1.0,
          churn_window: float = 0.02, churn_keys: int = 20, bursts: int = 3) -> RaceRun:
    """Each limiter gets `requests` hits at once on one key (limit `limit` per minute), `bursts`
    times on fresh keys, and counts its worst burst (two clients meeting between a GET and its
    write is thread scheduling: one burst on a busy machine can admit exactly the limit); then
    `churn_seconds` of traffic over `churn_keys` keys with a `churn_window`-second window."""
    client = redis_client(max_connections=threads * 2)
    admitted, leaked = {}, {}
    try:
        for name, kind in LIMITERS.items():
            with run_prefix(client) as prefix:
                limiter = kind(client, Rule("fixed_window", limit, 60), prefix)
                admitted[name] = max(burst(limiter, f"burst-{n}", requests, threads)
                                     for n in range(bursts))
                rule = Rule("fixed_window", 1_000_000, churn_window)
                churn(kind(client, rule, f"{prefix}:churn"), [f"k{i}" for i in range(churn_keys)],
                      churn_seconds, max(1, threads // 3))
                leaked[name] = keys_without_ttl(client, f"{prefix}:churn")
    finally:
        client.close()
    return RaceRun(limit, requests, admitted, churn_keys, leaked)
