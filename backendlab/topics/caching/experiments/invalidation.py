"""Invalidation, measured: stale reads with TTL only, delete on write, and versioned keys."""

from __future__ import annotations

from backendlab import progressbar
from backendlab.topics.caching.experiments.shop import Shop
from backendlab.topics.caching.experiments.workload import Workload, read_while_writing

STRATEGIES = ("ttl", "delete", "version")


def invalidation(strategies: tuple[str, ...] = STRATEGIES, ttl: float = 5.0, reads: int = 120,
                 progress: bool = True) -> dict[str, Workload]:
    """The read/write workload with a long TTL, once per way of reacting to a write."""
    options = {strategy: dict(ttl=ttl, invalidation=strategy, query_delay=0.01)
               for strategy in strategies}
    with Shop() as shop, shop.serve_all(options) as started, \
            progressbar.progress(len(strategies), "strategies", progress) as bar:
        runs = {}
        for strategy, server in started.items():
            runs[strategy] = read_while_writing(server, strategy, reads)
            bar.update()
    return runs
