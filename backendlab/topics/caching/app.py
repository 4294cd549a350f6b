"""The products API's request handling: validation, keys, cache-aside, invalidation, HTTP caching."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backendlab.servers.errors import Rejected
from backendlab.topics.caching.aside import CacheAside
from backendlab.topics.caching.products import (CATEGORIES, MAX_ID, Catalog, connect, create_tables,
                                                drop_tables)
from backendlab.topics.caching.keys import KeyScheme
from backendlab.topics.caching.stores import MemoryStore, RedisStore

if TYPE_CHECKING:  # the server module imports this one
    from backendlab.topics.caching.server import Options

MAX_PAGE = 100_000
MAX_BODY = 4096
USER = re.compile(r"[A-Za-z0-9_-]{1,40}")


def whole_number(request: Request, name: str, default: int, low: int, high: int) -> int:
    """Query parameter `name` as an int in [low, high], or a 400 that says what is allowed."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\s*\d{1,9}\s*", raw):
        raise Rejected(400, f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise Rejected(400, f"{name} must be from {low} to {high}, got {value}")
    return value


def etag_of(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'


def not_modified(request: Request, etag: str) -> bool:
    """Whether the client's If-None-Match names `etag` (a list, weak validators and * count)."""
    header = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


def raw_target(request: Request) -> str:
    """The path and query string exactly as the client sent them."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.url.path + (f"?{query}" if query else "")


class App:
    """The server's state (catalog, cache, counters) and its request handlers."""

    def __init__(self, options: Options):
        """`options` name their services: `prepare` resolved them once, for every worker."""
        self.ttl = options.ttl
        self.invalidation = options.invalidation
        self.max_size = options.max_page_size
        self.tables, self.seed = options.tables, options.seed
        self.database_url = options.database_url
        self.catalog = Catalog(self.database_url, self.tables, options.query_delay)
        self.keys = KeyScheme(options.namespace, options.key_scheme)
        store = None
        if options.cache == "redis":
            store = RedisStore(options.redis_url)
        elif options.cache == "memory":
            store = MemoryStore(self.ttl)
        self.cache = CacheAside(store, self.ttl, options.jitter,
                                single_flight=options.stampede == "lock",
                                retry_after=options.redis_retry,
                                lock_ttl=max(2.0, 20 * options.query_delay))

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        if self.seed:
            with contextlib.closing(connect(self.database_url)) as conn:
                drop_tables(conn, self.tables)
                create_tables(conn, self.tables)
        try:
            yield
        finally:
            if self.cache.store is not None:
                await self.cache.store.close()
            self.catalog.close()
            if self.seed:
                with contextlib.closing(connect(self.database_url)) as conn:
                    drop_tables(conn, self.tables)

    def _answer(self, request: Request, body: str, how: str, cache_control: str,
                vary: str | None = None) -> Response:
        headers = {"X-Cache": how, "ETag": etag_of(body), "Cache-Control": cache_control}
        if vary:
            headers["Vary"] = vary
        if not_modified(request, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def _page(self, request: Request) -> tuple[int, int]:
        return (whole_number(request, "page", 1, 1, MAX_PAGE),
                whole_number(request, "page_size", 10, 1, self.max_size))

    async def products(self, request: Request) -> Response:
        category = request.query_params.get("category", "").strip().lower()
        if not category:
            raise Rejected(400, f"category is required: one of {', '.join(CATEGORIES)}")
        if category not in CATEGORIES:
            raise Rejected(404, f"unknown category {category[:40]!r}; use one of "
                                f"{', '.join(CATEGORIES)}")
        page, size = self._page(request)
        version = 0
        if self.invalidation == "version":
            version = await self.cache.version(self.keys.version(category))
        key = self.keys.products(raw_target(request), category, page, size, version)

        async def load():
            items = await self.catalog.product_page(category, page, size)
            return {"category": category, "page": page, "page_size": size, "items": items}

        tag = self.keys.tag(category) if self.invalidation == "delete" else None
        body, how = await self.cache.get(key, load, tag)
        return self._answer(request, body, how, f"public, max-age={int(self.ttl)}")

    async def _price(self, request: Request) -> float:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise Rejected(413, f"send at most {MAX_BODY} bytes, like {{\"price\": 12.5}}")
        try:
            price = json.loads(body)["price"]
        except (ValueError, KeyError, TypeError):
            raise Rejected(400, 'send JSON like {"price": 12.5}') from None
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price < 1e9:
            raise Rejected(422, f"price must be a number from 0 to 1e9, got {price!r}")
        return float(price)

    async def update_product(self, request: Request) -> Response:
        product_id = request.path_params["product_id"]
        if product_id > MAX_ID:
            raise Rejected(404, f"no product {product_id}")
        changed = await self.catalog.set_price(product_id, await self._price(request))
        if changed is None:
            raise Rejected(404, f"no product {product_id}")
        category, version = changed
        if self.invalidation == "delete":
            await self.cache.drop_tag(self.keys.tag(category))
        elif self.invalidation == "version":
            await self.cache.bump(self.keys.version(category))
        return JSONResponse({"id": product_id, "category": category, "version": version})

    async def orders(self, request: Request) -> Response:
        user = request.headers.get("x-user", "").strip()
        if not USER.fullmatch(user):
            raise Rejected(401, "say who you are in the X-User header (letters, digits, - or _)")
        page, size = self._page(request)
        key = self.keys.orders(raw_target(request), user, page, size)

        async def load():
            return {"user": user, "page": page, "page_size": size,
                    "items": await self.catalog.order_page(user, page, size)}

        body, how = await self.cache.get(key, load)
        return self._answer(request, body, how, f"private, max-age={int(self.ttl)}", vary="X-User")

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    async def stats(self, _request: Request) -> Response:
        """This worker's counts (each worker counts its own), with its pid to tell them apart."""
        return JSONResponse({"db_reads": self.catalog.reads, "db_writes": self.catalog.writes,
                             **self.cache.state(), "pid": os.getpid()})
