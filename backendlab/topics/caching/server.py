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

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from backendlab import servers
from backendlab.topics.caching.app import App, BadRequest, bad_request, http_error, server_error
from backendlab.topics.caching.keys import SCHEMES


def add_arguments(parser) -> None:
    parser.add_argument("--tables", required=True,
                        help="prefix of the tables PREFIX_products and PREFIX_orders")
    parser.add_argument("--namespace", required=True, help="prefix of every cache key")
    parser.add_argument("--seed", action="store_true",
                        help="create and fill the tables at start, drop them at exit")
    parser.add_argument("--redis-url", default="", help="default: the suite's Redis")
    parser.add_argument("--database-url", default="", help="default: the suite's database")
    parser.add_argument("--cache", choices=("redis", "memory", "none"), default="redis",
                        help="Redis (shared), an in-process TTL cache, or no cache")
    parser.add_argument("--key-scheme", choices=SCHEMES, default="designed",
                        help="how cache keys are built")
    parser.add_argument("--invalidation", choices=("ttl", "delete", "version"), default="delete",
                        help="on a write: nothing (wait for the TTL), delete the keys, "
                             "or bump a version")
    parser.add_argument("--stampede", choices=("none", "lock"), default="none",
                        help="lock: one request loads a missing key, the others wait for it")
    parser.add_argument("--ttl", type=float, default=30.0, help="seconds a cached page lives")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="add up to this fraction of the TTL at random, so keys expire apart")
    parser.add_argument("--query-delay", type=float, default=0.05,
                        help="seconds every read query takes (stands in for a slow query)")
    parser.add_argument("--max-page-size", type=int, default=100)
    parser.add_argument("--redis-retry", type=float, default=0.5,
                        help="after a Redis error, seconds before trying Redis again")


def create_app() -> Starlette:
    """The ASGI app, configured from the options the server was started with."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = App(servers.options())
    routes = [
        Route("/health", app.health),
        Route("/stats", app.stats),
        Route("/products", app.products),
        Route("/products/{product_id:int}", app.update_product, methods=["PUT"]),
        Route("/me/orders", app.orders),
    ]
    return Starlette(routes=routes, lifespan=app.lifespan,
                     exception_handlers={BadRequest: bad_request, HTTPException: http_error,
                                         Exception: server_error})
