"""TTL, measured: keys disappearing on their own, and the hit-ratio vs staleness trade-off."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from backendlab import plots, progressbar
from backendlab.topics.caching.experiments.shop import Shop
from backendlab.topics.caching.experiments.workload import Workload, read_while_writing


@dataclass
class Expiry:
    """How many of the run's keys existed at each moment (s since the first page was asked for).

    The pages were cached between 0 and `cached_by`, so every key must exist until `ttl` and be
    gone by `cached_by + ttl`.
    """

    ttl: float
    cached: int
    cached_by: float = 0.0
    times: list[float] = field(default_factory=list)
    alive: list[int] = field(default_factory=list)

    def alive_between(self, start: float, end: float) -> list[int]:
        return [n for t, n in zip(self.times, self.alive) if start <= t <= end]

    def all_alive(self) -> list[int]:
        """Key counts sampled before any key could have expired."""
        return self.alive_between(0, self.ttl * 0.9)

    def all_gone(self, margin: float = 0.15) -> list[int]:
        """Key counts sampled after every key's TTL had passed (plus `margin` s)."""
        return self.alive_between(self.cached_by + self.ttl + margin, float("inf"))

    def plot(self):
        """How many keys exist over time, with the TTL they were given marked."""
        fig, (ax,) = plots.figure(width=7)
        ax.step(self.times, self.alive, where="post", label="keys in Redis")
        ax.axvline(self.ttl, color=plots.PALETTE[3], linestyle=":", label=f"TTL: {self.ttl:g} s")
        ax.set_xlabel("time since the first page was asked for (s)")
        ax.set_ylabel("keys")
        ax.legend()
        return plots.finish(fig, f"{self.cached} cached keys vanish by themselves {self.ttl:g} s after "
                                 "they were set")


class TtlSweep(list):
    """The workload's runs (`Workload`), one per TTL of `ttls` (s), in the same order."""

    def __init__(self, ttls: tuple[float, ...], runs: list[Workload]):
        super().__init__(runs)
        self.ttls = tuple(ttls)

    def plot(self):
        """Hit and stale-read ratios against the TTL."""
        return plots.ratio_lines(self.ttls, {"hit ratio": [run.hit_ratio for run in self],
                                             "stale-read ratio": [run.stale_ratio for run in self]},
                                 xlabel="TTL (s, log scale)", ylabel="share of reads",
                                 title="Longer TTL: more hits, and more stale reads")


def ttl_expiry(ttl: float = 0.6, pages: int = 6, every: float = 0.05) -> Expiry:
    """Cache `pages` pages with a TTL of `ttl` s, then count the run's keys until they are gone."""
    with Shop() as shop, shop.serve(ttl=ttl, query_delay=0.0, invalidation="ttl") as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/health")
        start = time.perf_counter()
        for page in range(1, pages + 1):
            client.get(f"/products?category=books&page={page}&page_size=5").raise_for_status()
        result = Expiry(ttl, pages, cached_by=time.perf_counter() - start)
        while (now := time.perf_counter() - start) < result.cached_by + ttl + 0.5:
            result.times.append(now)
            result.alive.append(len(shop.keys()))
            time.sleep(every)
    return result


def ttl_sweep(ttls: tuple[float, ...] = (0.03, 0.1, 0.3, 3.0), reads: int = 120,
              every: float = 0.025, progress: bool = True) -> TtlSweep:
    """The same read/write workload, one read every `every` s, against one server per TTL (none
    invalidating on write), all at once. On that fixed clock a TTL spans the same number of reads
    on any machine, so the ratios measure the TTL rather than the machine's speed."""
    labels = {f"ttl{i}": ttl for i, ttl in enumerate(ttls)}
    with Shop() as shop, shop.serve_all({label: dict(ttl=ttl, invalidation="ttl", query_delay=0.005)
                                         for label, ttl in labels.items()}) as started, \
            progressbar.progress(len(ttls), "TTLs", progress) as bar, ThreadPoolExecutor(len(ttls)) as pool:
        futures = [pool.submit(read_while_writing, started[label], f"TTL {ttl:g} s", reads,
                               every=every) for label, ttl in labels.items()]
        for future in futures:
            future.add_done_callback(lambda _: bar.update())
        return TtlSweep(ttls, [future.result() for future in futures])
