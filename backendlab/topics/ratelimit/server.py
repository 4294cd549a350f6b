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

import asyncio
import os
import uuid
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backendlab import servers
from backendlab.servers.errors import Rejected, handlers
from backendlab.servers.flags import (add_flags, checked, from_options, number, option,
                                      whole_number)
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


@dataclass(frozen=True)
class Options:
    """The rule, whom it counts and where the counters live; each a flag of `serve ratelimit`."""

    store: str = option("memory", "where counters live: each process's memory, or Redis "
                                  "(shared)", choices=("memory", "redis"))
    algorithm: str = option("sliding_log", "how requests are counted", choices=ALGORITHMS)
    points: int = option(10, "requests allowed per duration", parse=whole_number(1))
    duration: float = option(60, "the window, in seconds", parse=number(0, above=True))
    block: float = option(0, "seconds a key is refused after going over the limit (0: none)",
                          parse=number(0))
    key: str = option("ip", "whom to count: client IP, X-User-Id, or X-API-Key",
                      choices=("ip", "user", "api-key"))
    forwarded: str = option("none", "how --key ip reads X-Forwarded-For: ignore it, trust its "
                                    "first entry (spoofable), or trust only --trusted-proxies",
                            choices=FORWARDED_MODES)
    trusted_proxies: str = option("", "comma-separated addresses or networks of the proxies you "
                                      "run", parse=checked(parse_networks))
    plans: str = option("free:10,pro:100", "points per plan for --key api-key, as "
                                           "name:points,...", parse=checked(parse_plans))
    prefix: str = option("", "Redis key prefix (default: one unique to this server, so servers "
                             "sharing a Redis, a class's say, do not count each other's requests)")
    redis_url: str = option("", "Redis to use (default: the suite's, real or embedded, found "
                                "once for every worker)")
    on_redis_error: str = option("insurance", "when Redis is down: admit all, refuse all (503), "
                                              "or limit in memory",
                                 choices=[p.value for p in FailurePolicy])


def add_arguments(parser) -> None:
    add_flags(parser, Options)


def prepare(opts: dict) -> dict:
    """Before the workers start: pick the key prefix and find the suite's Redis once, so every
    worker shares both (each would otherwise start an embedded Redis of its own)."""
    opts["prefix"] = opts["prefix"] or f"backendlab:ratelimit:{uuid.uuid4().hex[:8]}"
    if opts["store"] == "redis" and not opts["redis_url"]:
        from backendlab.services import redis_url

        opts["redis_url"] = servers.shared_service(redis_url, "ratelimit: counters in Redis at")
    return opts


def redis_connection(url: str) -> redis.Redis:
    """A client that gives up fast: a limiter must not hang requests while Redis is away."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=0.25,
                                socket_timeout=0.5, retry=Retry(NoBackoff(), 0))


class RateLimitedApi:
    """The API's limiters (one per plan), how it identifies clients, and its counters."""

    def __init__(self, options: Options):
        """`options.redis_url` names the Redis, for --store redis: `prepare` found it once."""
        self.key_kind = options.key
        self.forwarded = options.forwarded
        self.trusted = parse_networks(options.trusted_proxies)
        self.points = options.points
        self.plans = parse_plans(options.plans)
        self.rule_options = (options.algorithm, options.duration, options.block)
        self.prefix = options.prefix
        self.policy = options.on_redis_error
        self.store = options.store
        self.client = None
        if self.store == "redis":
            self.client = redis_connection(options.redis_url)
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
            raise Rejected(exc.status, str(exc)) from None
        limiter = self.limiter(identity.points)
        try:
            if self.client is None:
                decision = limiter.hit(identity.key)
            else:  # redis-py is synchronous: keep its round trip off the event loop
                decision = await asyncio.to_thread(limiter.hit, identity.key)
        except StoreUnavailable as exc:
            self.refused += 1
            raise Rejected(503, f"{exc}; try again shortly", {"Retry-After": "1"}) from None
        headers = decision.headers()
        if not decision.allowed:
            self.refused += 1
            raise Rejected(429, f"Too Many Requests: over {decision.limit} requests per "
                                f"{limiter.rule.duration:g} s; retry after "
                                f"{headers['Retry-After']} s", headers, key=identity.key)
        self.admitted += 1
        return JSONResponse({"data": "ok", "key": identity.key, "plan": identity.plan,
                             "pid": os.getpid()}, headers=headers)


def create_app() -> Starlette:
    """The API, configured from the options the server was started with."""
    api = RateLimitedApi(from_options(Options))
    return Starlette(routes=[servers.index(ROUTES, limited=LIMITED, rule=api.describe_rule()),
                             Route("/health", api.health), Route("/stats", api.stats),
                             Route("/api/data", api.data)],
                     exception_handlers=handlers(ROUTES))
