"""Stampede, measured: database reads caused by a burst of requests on an expired hot key, with
plain cache-aside and with single flight (a lock in Redis)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from backendlab import plots, progressbar
from backendlab.topics.caching.experiments.shop import Shop, stats
from backendlab.coroutines import run_coroutine

HOT = "/products?category=music&page=1&page_size=10"


@dataclass
class StampedeRun:
    """Database reads caused by each burst of `burst` concurrent requests on an expired key."""

    mode: str
    burst: int
    db_reads: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


class StampedeRuns(dict):
    """{mode: StampedeRun}: the same bursts with and without protection."""

    def plot(self):
        """Database reads of each burst, grouped by expiry, one bar per mode."""
        first = next(iter(self.values()))
        return plots.grouped_bars({f"expiry {i + 1}": {mode: run.db_reads[i] for mode, run in self.items()}
                                   for i in range(len(first.db_reads))},
                                  ylabel="database reads per burst",
                                  title=f"{first.burst} requests at once on an expired key,\ndatabase "
                                        "reads per burst: " + ", ".join(f"{mode} up to {max(run.db_reads)}"
                                                                      for mode, run in self.items()))


async def _burst(url: str, count: int) -> list[int]:
    """`count` GETs of the hot page at once, over connections opened beforehand."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as client:
        await asyncio.gather(*(client.get("/health") for _ in range(count)))
        answers = await asyncio.gather(*(client.get(HOT) for _ in range(count)))
    return [answer.status_code for answer in answers]


def _wait_until_expired(shop: Shop, label: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while shop.keys(f"{label}:products:"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the hot key of {label!r} did not expire within {timeout} s")
        time.sleep(0.02)


def stampede(modes: tuple[str, ...] = ("none", "lock"), burst: int = 30, rounds: int = 2,
             ttl: float = 0.3, query_delay: float = 0.3,
             progress: bool = True) -> StampedeRuns:
    """Cache the hot page; then `rounds` times per mode: wait until it has expired, and send
    `burst` requests for it at once."""
    runs = StampedeRuns((mode, StampedeRun(mode, burst)) for mode in modes)
    options = {mode: dict(ttl=ttl, stampede=mode, query_delay=query_delay, invalidation="ttl")
               for mode in modes}
    with Shop() as shop, shop.serve_all(options) as started, \
            progressbar.progress(rounds * len(modes), "bursts", progress) as bar:
        for server in started.values():
            httpx.get(server.url + HOT, timeout=10).raise_for_status()
        for _ in range(rounds):
            for mode, server in started.items():
                _wait_until_expired(shop, mode)
                before = stats(server)["db_reads"]
                runs[mode].statuses += run_coroutine(_burst(server.url, burst), timeout=30)
                runs[mode].db_reads.append(stats(server)["db_reads"] - before)
                bar.update()
    return runs
