"""Lab 01's server: POST /upload streams the request body into a CSV handler and answers its dict.

The handler is `async def f(chunks)`, loaded from `--handler FILE.py:NAME`; `chunks` is
`request.stream()`, the body's bytes as they arrive. The server adds only what a real endpoint
must: a Content-Type check, a 400 for undecodable bytes, and a one-line JSON error for a crash.
"""

from __future__ import annotations

import argparse
import importlib.util

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backendlab.checks import describe_error
from backendlab.servers import options

CSV_TYPES = {"text/csv", "application/csv"}
ROUTES = {"GET /health": "", "POST /upload": "a text/csv body into your handler"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--handler", required=True,
                        help="FILE.py:NAME, an `async def NAME(chunks)` that returns a dict")


def load_handler(spec: str):
    """The function `NAME` of `FILE.py:NAME`, imported from that file."""
    path, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location("csvlab_handler", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app() -> Starlette:
    handler = load_handler(options()["handler"])

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def upload(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() not in CSV_TYPES:
            return _error(415, "send the CSV with Content-Type: text/csv "
                               f"(got {content_type or 'none'!r})")
        try:
            result = await handler(request.stream())
        except UnicodeDecodeError as exc:
            return _error(400, f"the body is not valid UTF-8: {exc}")
        except Exception as exc:
            return _error(500, f"{handler.__name__} raised {describe_error(exc, handler)}")
        try:
            return JSONResponse(result)
        except (TypeError, ValueError) as exc:
            return _error(500, f"{handler.__name__} returned something JSON cannot encode: {exc}")

    return Starlette(routes=[Route("/health", health), Route("/upload", upload, methods=["POST"])])
