"""Bad input, shown: each hostile request and the status and JSON message it gets."""

from __future__ import annotations

import httpx

from backendlab.topics.caching.experiments.shop import Shop

BAD_GETS = (
    ("page 0", "/products?category=books&page=0", {}),
    ("page not a number", "/products?category=books&page=two", {}),
    ("negative page", "/products?category=books&page=-1", {}),
    ("huge page size", "/products?category=books&page_size=100000", {}),
    ("page with 30 digits", "/products?category=books&page=" + "9" * 30, {}),
    ("unknown category", "/products?category=weapons", {}),
    ("no category", "/products", {}),
    ("orders without X-User", "/me/orders", {}),
    ("orders for X-User 'a:b'", "/me/orders", {"X-User": "a:b"}),
    ("no such route", "/admin", {}),
)
BAD_PUTS = (
    ("write with a text price", 1001, {"content": b'{"price": "cheap"}'}),
    ("write that is not JSON", 1001, {"content": b"price=3"}),
    ("write to a missing product", 999999, {"content": b'{"price": 1}'}),
    ("write of 10 kB", 1001, {"content": b'{"price": 1, "x": "' + b"y" * 10_000 + b'"}'}),
)


def bad_inputs() -> list[tuple[str, int, str]]:
    """(case, status, body) for each hostile request."""
    with Shop() as shop, shop.serve(query_delay=0.0) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        rows = [(case, client.get(path, headers=headers)) for case, path, headers in BAD_GETS]
        rows += [(case, client.put(f"/products/{pid}", **body)) for case, pid, body in BAD_PUTS]
    return [(case, response.status_code, response.text) for case, response in rows]
