"""Cache-aside, measured: the same pages asked twice, a miss each the first time, a hit after."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from backendlab import plots
from backendlab.topics.caching.experiments.shop import Shop, stats, timed_get
from backendlab.topics.caching.products import CATEGORIES


@dataclass
class ColdWarm:
    """Latency (s) and X-Cache of each request, first pass (cold) and second pass (warm)."""

    cold: list[float]
    warm: list[float]
    cold_how: list[str]
    warm_how: list[str]
    db_reads: int
    query_delay: float

    def median(self, which: str) -> float:
        values = sorted(getattr(self, which))
        return values[len(values) // 2]

    @property
    def speedup(self) -> float:
        return self.median("cold") / self.median("warm")

    def summary(self) -> dict:
        return {"requests per pass": len(self.cold), "database reads": self.db_reads,
                "cold X-Cache": sorted(set(self.cold_how)), "warm X-Cache": sorted(set(self.warm_how)),
                "cold median ms": round(self.median("cold") * 1000, 1),
                "warm median ms": round(self.median("warm") * 1000, 1)}

    def plot(self):
        """Each request's latency, the cold pass beside the warm one, medians marked."""
        return plots.latency_strip({"cold (miss)": self.cold, "warm (hit)": self.warm},
                                   title=f"The same {len(self.cold)} pages twice: cached, the median is "
                                         f"{self.speedup:.0f}x faster (log scale)")


def cold_vs_warm(pages: int = 12, query_delay: float = 0.05) -> ColdWarm:
    """Request `pages` distinct pages twice from a fresh cache: every first request is a miss."""
    paths = [f"/products?category={CATEGORIES[i % 4]}&page={i // 4 + 1}&page_size=10"
             for i in range(pages)]
    with Shop() as shop, shop.serve(query_delay=query_delay) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/health")
        cold = [timed_get(client, path) for path in paths]
        warm = [timed_get(client, path) for path in paths]
        reads = stats(server)["db_reads"]
    return ColdWarm([t for t, _ in cold], [t for t, _ in warm],
                    [r.headers["x-cache"] for _, r in cold], [r.headers["x-cache"] for _, r in warm],
                    reads, query_delay)
