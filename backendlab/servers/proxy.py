"""A round-robin reverse proxy: the proxy "you run" in front of several instances of an API.

    backendlab serve proxy --port 8000 --upstream http://127.0.0.1:8001,http://127.0.0.1:8002

Every request goes to the next upstream in turn, with the client's address appended to
X-Forwarded-For (what nginx's `$proxy_add_x_forwarded_for` does). An upstream that does not answer
gets the client a 502 with a JSON message.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backendlab.servers.errors import Rejected, handlers
from backendlab.servers.flags import add_flags, checked, from_options, option

HOP_HEADERS = {"connection", "content-length", "transfer-encoding", "keep-alive", "host",
               "content-encoding"}
UVICORN_OPTIONS = {"proxy_headers": False}
ROUTES = {"* /{path}": "forwarded to the next --upstream"}


def upstreams(text: str) -> list[str]:
    """'http://a:1, http://b:2/' -> ['http://a:1', 'http://b:2'], each an http(s) URL."""
    urls = [u.strip().rstrip("/") for u in text.split(",") if u.strip()]
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if not urls or bad:
        raise ValueError(f"--upstream takes comma-separated http:// URLs, got {text!r}")
    return urls


@dataclass(frozen=True)
class Options:
    """Where the proxy forwards to."""

    upstream: str = option(help="comma-separated URLs of the instances to forward to",
                           parse=checked(upstreams))


def add_arguments(parser) -> None:
    add_flags(parser, Options)


class RoundRobinProxy:
    """Forwards each request to the next upstream, appending the peer to X-Forwarded-For."""

    def __init__(self, urls: list[str]):
        self.upstreams = itertools.cycle(urls)
        self.http: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=10, limits=limits) as self.http:
            yield

    async def forward(self, request: Request) -> Response:
        peer = request.client.host if request.client else "unknown"
        headers = {k: v for k, v in request.headers.items() if k not in HOP_HEADERS}
        prior = request.headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{prior}, {peer}" if prior else peer
        url = next(self.upstreams) + request.url.path
        try:
            answer = await self.http.request(request.method, url, params=request.query_params,
                                             headers=headers, content=await request.body())
        except httpx.HTTPError as exc:
            raise Rejected(502, f"upstream {url} failed: {type(exc).__name__}") from None
        kept = {k: v for k, v in answer.headers.items() if k not in HOP_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=kept)


def create_app() -> Starlette:
    proxy = RoundRobinProxy(upstreams(from_options(Options).upstream))
    return Starlette(routes=[Route("/{path:path}", proxy.forward,
                                   methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])],
                     lifespan=proxy.lifespan, exception_handlers=handlers(ROUTES))
