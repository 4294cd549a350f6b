"""Lab 01's server: POST /upload streams the request body into a CSV handler and answers its dict.

The handler is `async def f(chunks)`, loaded from `--handler FILE.py:NAME`; `chunks` is
`request.stream()`, the body's bytes as they arrive. The server adds only what a real endpoint
must: a Content-Type check, a 400 for undecodable bytes, and a one-line JSON error for a crash.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backendlab.describe import describe_error
from backendlab.servers.errors import Rejected, handlers
from backendlab.servers.flags import add_flags, from_options, option
from backendlab.servers.learner_code import load_function

CSV_TYPES = {"text/csv", "application/csv"}
ROUTES = {"GET /health": "", "POST /upload": "a text/csv body into your handler"}


@dataclass(frozen=True)
class Options:
    """Which learner function the server runs."""

    handler: str = option(help="FILE.py:NAME, an `async def NAME(chunks)` that returns a dict")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, Options)


def create_app() -> Starlette:
    handler = load_function(from_options(Options).handler)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def upload(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() not in CSV_TYPES:
            raise Rejected(415, "send the CSV with Content-Type: text/csv "
                                f"(got {content_type or 'none'!r})")
        try:
            result = await handler(request.stream())
        except UnicodeDecodeError as exc:
            raise Rejected(400, f"the body is not valid UTF-8: {exc}") from None
        except Exception as exc:
            raise Rejected(500, f"{handler.__name__} raised "
                                f"{describe_error(exc, handler)}") from None
        try:
            return JSONResponse(result)
        except (TypeError, ValueError) as exc:
            raise Rejected(500, f"{handler.__name__} returned something JSON cannot encode: "
                                f"{exc}") from None

    return Starlette(routes=[Route("/health", health), Route("/upload", upload, methods=["POST"])],
                     exception_handlers=handlers(ROUTES))
