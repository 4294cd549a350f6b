"""Cache layers, measured: an in-process cache vs Redis behind two instances, and what HTTP
caching headers (Cache-Control, ETag, 304) tell a browser or a CDN."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from backendlab import plots
from backendlab.topics.caching.experiments.shop import Shop

PAGE = "/products?category=garden&page=1&page_size=10"


@dataclass
class TwoInstances:
    """Reads on instance B right after a write through instance A, for one kind of cache."""

    store: str
    reads: int
    stale: int


class InstancePairs(dict):
    """{store: TwoInstances}: the same writes and reads per kind of cache."""

    def plot(self):
        """Stale reads on instance B per store, one bar each."""
        writes = next(iter(self.values())).reads
        return plots.bars({f"{store} cache": result.stale for store, result in self.items()},
                          ylabel=f"stale reads on B (of {writes})",
                          title="A write through instance A, then a read through B,\nstale reads: "
                                + ", ".join(f"{store} {result.stale} of {writes}" for store, result in self.items()))


def two_instances(stores: tuple[str, ...] = ("memory", "redis"),
                  writes: int = 8) -> InstancePairs:
    """Per store, instances A and B (both delete on write). Each round: B caches the page, a
    product on it changes through A, and B is asked for the page again."""
    results = InstancePairs()
    with Shop() as shop:
        options = {f"{store}-{name}": dict(cache=store, ttl=30, query_delay=0.0,
                                           namespace=f"{shop.namespace}:{store}")
                   for store in stores for name in "AB"}  # A and B share their store's keys
        with shop.serve_all(options) as started, httpx.Client(timeout=10) as client:
            for store in stores:
                a, b = started[f"{store}-A"], started[f"{store}-B"]
                stale = sum(_stale_on_b(client, a.url, b.url, pid)
                            for pid in Shop.page_ids("garden", 1, 10)[:writes])
                results[store] = TwoInstances(store, writes, stale)
    return results


def _stale_on_b(client: httpx.Client, a: str, b: str, pid: int) -> bool:
    """B caches the page, product `pid` changes through A: does B still show the old version?"""
    client.get(b + PAGE).raise_for_status()
    written = client.put(f"{a}/products/{pid}", json={"price": 1.0}).raise_for_status()
    shown = {item["id"]: item["version"] for item in client.get(b + PAGE).json()["items"]}
    return shown[pid] < written.json()["version"]


@dataclass
class HttpCaching:
    """Each step: (name, status, Cache-Control, ETag and Vary as received)."""

    steps: list[tuple[str, int, str, str]]

    def status(self, step: str) -> int:
        return next(status for name, status, _, _ in self.steps if name == step)


def http_caching() -> HttpCaching:
    """GET, conditional GET (304), a write, the same conditional GET (200), a private page."""
    steps = []

    def record(name: str, response: httpx.Response) -> str:
        headers = response.headers
        vary = f"  Vary: {headers['vary']}" if "vary" in headers else ""
        steps.append((name, response.status_code, headers.get("cache-control", ""),
                      headers.get("etag", "") + vary))
        return headers.get("etag", "")

    with Shop() as shop, shop.serve(query_delay=0.0) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        path = "/products?category=books&page=1&page_size=5"
        etag = record("first GET", client.get(path))
        record("GET with If-None-Match", client.get(path, headers={"If-None-Match": etag}))
        client.put(f"/products/{Shop.page_ids('books', 1, 5)[0]}", json={"price": 42.0})
        record("same If-None-Match after a write", client.get(path, headers={"If-None-Match": etag}))
        record("private orders", client.get("/me/orders", headers={"X-User": "alice"}))
    return HttpCaching(steps)
