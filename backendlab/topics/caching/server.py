"""Products API for notebook 05: a deliberately slow SQL query, cached in Redis (or in-process).

Endpoints:
  GET  /health                       answers at once
  GET  /stats                        database reads and writes, cache hits, misses, bypasses, errors
  GET  /products?category=&page=&page_size=
                                     one page of a category; shared data, `Cache-Control: public`
  PUT  /products/{id}   {"price": n} change a product (its version goes up) and invalidate
  GET  /me/orders?page=&page_size=   the caller's orders (user in the `X-User` header); private

Every answer says how it was served in `X-Cache`: hit, miss, bypass (cache unreachable: served
from the database) or off. Answers carry an `ETag`; a matching `If-None-Match` gets 304. Bad input
gets a 4xx with a JSON `error` message.

Options choose the lesson: where the cache lives (--cache), how keys are built (--key-scheme),
how writes invalidate (--invalidation), and whether a miss is loaded once (--stampede lock). When
Redis stops answering, requests fall back to the database (slower), the degradation is logged once,
Redis is retried every --redis-retry seconds, and the recovery is logged. From a shell, `--seed`
creates the tables at start and drops them at exit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import Route

from backendlab import servers
from backendlab.servers.errors import handlers
from backendlab.servers.flags import add_flags, from_options, number, option, whole_number
from backendlab.topics.caching.app import App
from backendlab.topics.caching.keys import SCHEMES

ROUTES = {"GET /health": "", "GET /stats": "reads, writes, hits, misses",
          "GET /products": "?category=&page=&page_size=", "PUT /products/{id}": '{"price": n}',
          "GET /me/orders": "X-User, ?page=&page_size="}


@dataclass(frozen=True)
class Options:
    """What the server caches, where, and how; each a flag of `serve caching`."""

    tables: str = option(help="prefix of the tables PREFIX_products and PREFIX_orders")
    namespace: str = option(help="prefix of every cache key")
    seed: bool = option(False, "create and fill the tables at start, drop them at exit")
    redis_url: str = option("", "default: the suite's Redis, found once for every worker")
    database_url: str = option("", "default: the suite's database, found once for every worker")
    cache: str = option("redis", "Redis (shared), an in-process TTL cache, or no cache",
                        choices=("redis", "memory", "none"))
    key_scheme: str = option("designed", "how cache keys are built", choices=SCHEMES)
    invalidation: str = option("delete", "on a write: nothing (wait for the TTL), delete the "
                                         "keys, or bump a version",
                               choices=("ttl", "delete", "version"))
    stampede: str = option("none", "lock: one request loads a missing key, the others wait for "
                                   "it", choices=("none", "lock"))
    ttl: float = option(30.0, "seconds a cached page lives", parse=number(0, above=True))
    jitter: float = option(0.0, "add up to this fraction of the TTL at random, so keys expire "
                                "apart", parse=number(0))
    query_delay: float = option(0.05, "seconds every read query takes (stands in for a slow "
                                      "query)", parse=number(0))
    max_page_size: int = option(100, "the largest page_size a client may ask for",
                                parse=whole_number(1))
    redis_retry: float = option(0.5, "after a Redis error, seconds before trying Redis again",
                                parse=number(0))


def add_arguments(parser) -> None:
    add_flags(parser, Options)


def prepare(opts: dict) -> dict:
    """Before the workers start: find the suite's database and (for --cache redis) its Redis
    once, so every worker shares them (each would otherwise start an embedded one of its own)."""
    from backendlab.services import database_url, redis_url

    if not opts["database_url"]:
        opts["database_url"] = servers.shared_service(database_url, "caching: products in")
    if opts["cache"] == "redis" and not opts["redis_url"]:
        opts["redis_url"] = servers.shared_service(redis_url, "caching: cache in Redis at")
    return opts


def create_app() -> Starlette:
    """The ASGI app, configured from the options the server was started with."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = App(from_options(Options))
    routes = [
        Route("/health", app.health),
        Route("/stats", app.stats),
        Route("/products", app.products),
        Route("/products/{product_id:int}", app.update_product, methods=["PUT"]),
        Route("/me/orders", app.orders),
    ]
    return Starlette(routes=routes, lifespan=app.lifespan, exception_handlers=handlers(ROUTES))
