"""Invalidation, measured: stale reads with TTL only, delete on write, and versioned keys."""

from __future__ import annotations

from backendlab import plots, progressbar
from backendlab.topics.caching.experiments.shop import Shop
from backendlab.topics.caching.experiments.workload import read_while_writing

STRATEGIES = ("ttl", "delete", "version")


class InvalidationRuns(dict):
    """{strategy: Workload}: the same workload per way of reacting to a write, with a `ttl` (s)."""

    def __init__(self, ttl: float):
        super().__init__()
        self.ttl = ttl

    def plot(self):
        """Hit and stale-read ratios per strategy, as grouped bars."""
        return plots.grouped_bars({name: {"hit ratio": run.hit_ratio, "stale-read ratio": run.stale_ratio}
                                   for name, run in self.items()},
                                  ylabel="share of reads", fmt="{:.2f}",
                                  title=f"TTL {self.ttl:g} s: "
                                        + ", ".join(f"{name} {run.stale_ratio:.0%} stale"
                                                    for name, run in self.items())
                                        + "\n(invalidating on write costs some hits)")


def invalidation(strategies: tuple[str, ...] = STRATEGIES, ttl: float = 5.0, reads: int = 120,
                 progress: bool = True) -> InvalidationRuns:
    """The read/write workload with a long TTL, once per way of reacting to a write."""
    options = {strategy: dict(ttl=ttl, invalidation=strategy, query_delay=0.01)
               for strategy in strategies}
    with Shop() as shop, shop.serve_all(options) as started, \
            progressbar.progress(len(strategies), "strategies", progress) as bar:
        runs = InvalidationRuns(ttl)
        for strategy, server in started.items():
            runs[strategy] = read_while_writing(server, strategy, reads)
            bar.update()
    return runs
