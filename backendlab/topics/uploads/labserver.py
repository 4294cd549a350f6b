"""Lab 02's server: POST /upload streams a multipart body into the learner's upload handler.

The handler is `async def f(chunks, content_type, folder, limits)`, loaded from
`--handler FILE.py:NAME`; `chunks` is the body as it arrives, `limits` a `Limits`. The server
adds what is not the lab's subject: a 408 for a stalled or too slow client, the handler's `Rejected` as a
JSON error with its status, a one-line 500 for a crash, and /stats counting the body bytes the
handler actually read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backendlab.describe import describe_error
from backendlab.servers.errors import Rejected, handlers
from backendlab.servers.flags import add_flags, from_options, option
from backendlab.servers.learner_code import load_function
from backendlab.topics.uploads.limits import Limits, timed_receive

ROUTES = {"GET /health": "", "GET /stats": "bytes your handler read",
          "POST /upload": "a multipart body into your handler"}


@dataclass(frozen=True)
class Options:
    """Which learner function the server runs, and where it stores files."""

    handler: str = option(help="FILE.py:NAME, an `async def NAME(chunks, content_type, folder, "
                               "limits)`")
    folder: str = option(help="where the handler stores files")


# the limits the lab sets from its checks; the others keep their defaults
LIMIT_FLAGS = ("max_file_bytes", "read_timeout", "body_timeout")


def add_arguments(parser) -> None:
    add_flags(parser, Options)
    add_flags(parser, Limits, only=LIMIT_FLAGS)


def create_app() -> Starlette:
    opts = from_options(Options)
    handler = load_function(opts.handler)
    limits = from_options(Limits)
    read = {"last_upload_bytes": 0}

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True, "pid": os.getpid()})

    async def stats(_request: Request) -> Response:
        return JSONResponse({**read, "limits": limits.as_dict(), "pid": os.getpid()})

    async def upload(request: Request) -> Response:
        read["last_upload_bytes"] = 0

        async def chunks():
            async for chunk in Request(request.scope, timed_receive(
                    request.receive, limits.read_timeout, limits.body_timeout)).stream():
                read["last_upload_bytes"] += len(chunk)
                yield chunk

        try:
            files = await handler(chunks(), request.headers.get("content-type"), opts.folder,
                                  limits)
        except (Rejected, ClientDisconnect):
            raise  # the handler's refusal, or a client gone: the server's handlers answer them
        except Exception as exc:
            raise Rejected(500, f"{handler.__name__} raised "
                                f"{describe_error(exc, handler)}") from None
        try:
            return JSONResponse({"files": files}, status_code=201)
        except (TypeError, ValueError) as exc:
            raise Rejected(500, f"{handler.__name__} returned something JSON cannot encode: "
                                f"{exc}") from None

    return Starlette(routes=[Route("/health", health), Route("/stats", stats),
                             Route("/upload", upload, methods=["POST"])],
                     exception_handlers=handlers(ROUTES))
