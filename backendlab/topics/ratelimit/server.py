"""Rate-limited API for notebook 06: choose the store, the algorithm, the rule and whom to count.

    backendlab serve ratelimit --port 8000 --store redis --algorithm sliding_log \\
        --points 10 --duration 60 --block 60 --key ip --workers 3

Endpoints:
  GET /            the routes, which one is limited, and the rule
  GET /health      answers at once, never limited
  GET /api/data    limited: 200 with RateLimit-Limit/-Remaining/-Reset headers, or 429 with the
                   same plus Retry-After and a JSON message; 503 when the store is down and the
                   policy is to fail closed
  GET /stats       this process's pid and how many requests it admitted and refused

Keys: --key ip (the peer, or X-Forwarded-For by --forwarded naive|trusted with
--trusted-proxies), --key user (X-User-Id), --key api-key (X-API-Key: <plan>_<key>, points per
plan from --plans). A missing or malformed identity gets 401/400/403 with a JSON message.
With --store redis every worker shares the counters of one Redis: --redis-url, else the suite's
(REDIS_URL, or an embedded one started once for all workers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backendlab import servers
from backendlab.topics.ratelimit import ALGORITHMS, MemoryLimiter, RedisLimiter, ResilientLimiter, Rule
from backendlab.topics.ratelimit.keys import (FORWARDED_MODES, BadKey, Identity, api_key_identity,
                                              client_ip, parse_networks, parse_plans, user_identity)
from backendlab.topics.ratelimit.policy import FailurePolicy, StoreUnavailable

# This server decides itself whom to trust (--forwarded): uvicorn must not rewrite the peer from
# X-Forwarded-For, as it does by default for connections from 127.0.0.1.
UVICORN_OPTIONS = {"proxy_headers": False}
LIMITED = "GET /api/data"
ROUTES = {"GET /": "the routes", LIMITED: "limited", "GET /health": "never limited",
          "GET /stats": "admitted and refused counts"}


def _number(kind, minimum: float, inclusive: bool):
    """An argparse type: a number of `kind` at least (or above) `minimum`, with a clear error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value < minimum or (value == minimum and not inclusive):
            bound = "at least" if inclusive else "above"
            raise argparse.ArgumentTypeError(f"{text} must be {bound} {minimum:g}")
        return value
    return parse


def _validated(parse):
    """An argparse type that checks the text with `parse` and keeps the text (options travel as
    JSON to the workers, which parse it again)."""
    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check


def add_arguments(parser) -> None:
    parser.add_argument("--store", choices=("memory", "redis"), default="memory",
                        help="where counters live: each process's memory, or Redis (shared)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="sliding_log")
    parser.add_argument("--points", type=_number(int, 1, True), default=10,
                        help="requests allowed per duration")
    parser.add_argument("--duration", type=_number(float, 0, False), default=60,
                        help="the window, in seconds")
    parser.add_argument("--block", type=_number(float, 0, True), default=0,
                        help="seconds a key is refused after going over the limit (0: none)")
    parser.add_argument("--key", choices=("ip", "user", "api-key"), default="ip",
                        help="whom to count: client IP, X-User-Id, or X-API-Key")
    parser.add_argument("--forwarded", choices=FORWARDED_MODES, default="none",
                        help="how --key ip reads X-Forwarded-For: ignore it, trust its first "
                             "entry (spoofable), or trust only --trusted-proxies")
    parser.add_argument("--trusted-proxies", type=_validated(parse_networks), default="",
                        help="comma-separated addresses or networks of the proxies you run")
    parser.add_argument("--plans", type=_validated(parse_plans), default="free:10,pro:100",
                        help="points per plan for --key api-key, as name:points,...")
    parser.add_argument("--prefix", default=f"backendlab:ratelimit:{uuid.uuid4().hex[:8]}",
                        help="Redis key prefix (default: one unique to this server, so servers "
                             "sharing a Redis, a class's say, do not count each other's requests)")
    parser.add_argument("--redis-url", default="",
                        help="Redis to use (default: the suite's, real or embedded)")
    parser.add_argument("--on-redis-error", choices=[p.value for p in FailurePolicy],
                        default="insurance",
                        help="when Redis is down: admit all, refuse all (503), or limit in memory")


def prepare(opts: dict) -> dict:
    """Before the workers start: find the suite's Redis once, so every worker shares it (each
    would otherwise start an embedded Redis of its own); a configured one that is down stops
    the server with the service's one-line fix."""
    if opts.get("store") == "redis" and not opts.get("redis_url"):
        from backendlab.services import ServiceUnavailable, redis_url

        try:
            opts["redis_url"] = redis_url()
        except ServiceUnavailable as exc:
            raise SystemExit(f"error: {exc}") from None
        print(f"ratelimit: counters in Redis at {opts['redis_url']}", file=sys.stderr)
    return opts


def redis_connection(url: str) -> redis.Redis:
    """A client that gives up fast: a limiter must not hang requests while Redis is away."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=0.25,
                                socket_timeout=0.5, retry=Retry(NoBackoff(), 0))


class RateLimitedApi:
    """The API's limiters (one per plan), how it identifies clients, and its counters."""

    def __init__(self, opts: dict):
        self.key_kind = opts.get("key", "ip")
        self.forwarded = opts.get("forwarded", "none")
        self.trusted = parse_networks(opts.get("trusted_proxies", ""))
        self.points = opts.get("points", 10)
        self.plans = parse_plans(opts.get("plans", "free:10,pro:100"))
        self.rule_options = (opts.get("algorithm", "sliding_log"), opts.get("duration", 60),
                             opts.get("block", 0))
        self.prefix = opts.get("prefix", "backendlab:ratelimit")
        self.policy = opts.get("on_redis_error", "insurance")
        self.store = opts.get("store", "memory")
        self.client = None
        if self.store == "redis":
            from backendlab.services import redis_url

            self.client = redis_connection(opts.get("redis_url") or redis_url())
        self.limiters: dict[int, object] = {}
        self.admitted = self.refused = 0

    def describe_rule(self) -> dict:
        """The rule as `GET /` shows it: how many requests per how long, counted per whom, where."""
        algorithm, duration, block = self.rule_options
        points = ({"plans": self.plans} if self.key_kind == "api-key"
                  else {"points": self.points})
        return {**points, "duration_s": duration, "block_s": block, "algorithm": algorithm,
                "key": self.key_kind, "store": self.store}

    def limiter(self, points: int):
        """The limiter for a plan of `points` (created on first use)."""
        if points not in self.limiters:
            algorithm, duration, block = self.rule_options
            rule = Rule(algorithm, points, duration, block)
            if self.client is None:
                self.limiters[points] = MemoryLimiter(rule)
            else:
                primary = RedisLimiter(self.client, rule, f"{self.prefix}:p{points}")
                self.limiters[points] = ResilientLimiter(primary, self.policy)
        return self.limiters[points]

    def identify(self, request: Request) -> Identity:
        headers = request.headers
        if self.key_kind == "api-key":
            return api_key_identity(headers.get("x-api-key"), self.plans)
        if self.key_kind == "user":
            return user_identity(headers.get("x-user-id"), self.points)
        peer = request.client.host if request.client else "unknown"
        ip = client_ip(peer, headers.get("x-forwarded-for"), self.forwarded, self.trusted)
        return Identity(f"ip:{ip}", self.points)

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    async def stats(self, _request: Request) -> Response:
        return JSONResponse({"pid": os.getpid(), "admitted": self.admitted,
                             "refused": self.refused})

    async def data(self, request: Request) -> Response:
        try:
            identity = self.identify(request)
        except BadKey as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        limiter = self.limiter(identity.points)
        try:
            if self.client is None:
                decision = limiter.hit(identity.key)
            else:  # redis-py is synchronous: keep its round trip off the event loop
                decision = await asyncio.to_thread(limiter.hit, identity.key)
        except StoreUnavailable as exc:
            self.refused += 1
            return JSONResponse({"error": f"{exc}; try again shortly"}, status_code=503,
                                headers={"Retry-After": "1"})
        headers = decision.headers()
        if not decision.allowed:
            self.refused += 1
            return JSONResponse({"error": f"Too Many Requests: over {decision.limit} requests per "
                                          f"{limiter.rule.duration:g} s; retry after "
                                          f"{headers['Retry-After']} s",
                                 "key": identity.key}, status_code=429, headers=headers)
        self.admitted += 1
        return JSONResponse({"data": "ok", "key": identity.key, "plan": identity.plan,
                             "pid": os.getpid()}, headers=headers)


def create_app() -> Starlette:
    """The API, configured from the options the server was started with."""
    api = RateLimitedApi(servers.options())
    return Starlette(routes=[servers.index(ROUTES, limited=LIMITED, rule=api.describe_rule()),
                             Route("/health", api.health), Route("/stats", api.stats),
                             Route("/api/data", api.data)],
                     exception_handlers={HTTPException: servers.json_http_errors(ROUTES)})
