"""The shop every notebook-05 experiment runs in: seeded tables and a key namespace unique to one
run, removed on exit (also on error), and the products servers started over them."""

from __future__ import annotations

import contextlib
import functools
import time
import uuid

import httpx

from backendlab.topics.caching.experiments.leftovers import track_process, track_run
from backendlab.servers import RunningServer, start_server, start_together
from backendlab.topics.caching.products import (connect, create_tables, drop_tables, order_ids,
                                                product_ids)
from backendlab.services import database_url, redis_client, redis_url
from backendlab.services.redis import delete_keys

HOT_PAGES = (("books", 1), ("books", 2), ("games", 1), ("games", 2))
HOT_SIZE = 10


class Shop:
    """Tables `bl05_<run>_*` and keys `backendlab:05:<run>:*`; `close` drops and deletes them all."""

    def __init__(self):
        run = uuid.uuid4().hex[:10]
        self.tables = f"bl05_{run}"
        self.namespace = f"backendlab:05:{run}"
        track_run(self.namespace, self.tables)

    def __enter__(self) -> "Shop":
        redis_url()  # resolved before any server starts, so they all share this Redis
        try:
            with contextlib.closing(connect(database_url())) as conn:
                create_tables(conn, self.tables)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def page_ids(category: str, page: int, size: int) -> list[int]:
        """The product ids the database puts on this page (what a right answer contains)."""
        return product_ids(category)[(page - 1) * size:page * size]

    @staticmethod
    def order_ids(user: str, page: int, size: int) -> list[int]:
        return order_ids(user)[(page - 1) * size:page * size]

    def keys(self, under: str = "") -> list[str]:
        """This run's keys in Redis now, optionally only those under `namespace:under`."""
        prefix = f"{self.namespace}:{under}" if under else f"{self.namespace}:"
        with contextlib.closing(redis_client()) as client:
            return sorted(client.scan_iter(match=prefix + "*", count=500))

    def close(self) -> None:
        """Delete every key of the namespace (never FLUSHDB: Redis is shared) and drop the tables."""
        try:
            with contextlib.closing(redis_client()) as client:
                delete_keys(client, self.namespace)
        finally:
            with contextlib.closing(connect(database_url())) as conn:
                drop_tables(conn, self.tables)

    def serve(self, label: str = "", **options) -> RunningServer:
        """A products server over this shop, its keys under `namespace[:label]`, with `options`."""
        namespace = f"{self.namespace}:{label}" if label else self.namespace
        server = start_server("caching", **{"tables": self.tables, "namespace": namespace,
                                            "redis_url": redis_url(), "database_url": database_url(),
                                            **options})
        track_process(server.process)
        return server

    @contextlib.contextmanager
    def serve_all(self, servers: dict[str, dict]):
        """One server per {label: options}, started in parallel; yields {label: server}."""
        with contextlib.ExitStack() as stack:
            yield start_together(stack, {label: functools.partial(self.serve, label, **options)
                                         for label, options in servers.items()})


def services_in_use() -> dict[str, str]:
    """Which Redis and database the experiments use, real or embedded (starting them if needed)."""
    from backendlab.services import redis as redis_service, sql as sql_service

    return {service.name: f"{service.mode()}: {service.address()}"
            for service in (redis_service.service, sql_service.service)}


def stats(server: RunningServer) -> dict:
    """The server's counters: database reads and writes, hits, misses, bypasses."""
    return httpx.get(server.url + "/stats", timeout=10).json()


def timed_get(client: httpx.Client, path: str, **kwargs) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path, **kwargs)
    return time.perf_counter() - start, response
