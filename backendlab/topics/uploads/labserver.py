"""Lab 02's server: POST /upload streams a multipart body into the learner's upload handler.

The handler is `async def f(chunks, content_type, folder, limits)`, loaded from
`--handler FILE.py:NAME`; `chunks` is the body as it arrives, `limits` a `Limits`. The server
adds what is not the lab's subject: a 408 for a stalled or too slow client, the handler's `Rejected` as a
JSON error with its status, a one-line 500 for a crash, and /stats counting the body bytes the
handler actually read.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backendlab.checks import describe_error
from backendlab.servers import options
from backendlab.topics.eventloop.labserver import load_handler
from backendlab.topics.uploads.errors import Rejected
from backendlab.topics.uploads.limits import Limits, timed_receive

ROUTES = {"GET /health": "", "GET /stats": "bytes your handler read",
          "POST /upload": "a multipart body into your handler"}


def add_arguments(parser) -> None:
    parser.add_argument("--handler", required=True,
                        help="FILE.py:NAME, an `async def NAME(chunks, content_type, folder, limits)`")
    parser.add_argument("--folder", required=True, help="where the handler stores files")
    parser.add_argument("--max-file-bytes", type=int, default=Limits().max_file_bytes)
    parser.add_argument("--read-timeout", type=float, default=Limits().read_timeout)
    parser.add_argument("--body-timeout", type=float, default=Limits().body_timeout)


def create_app() -> Starlette:
    opts = options()
    handler = load_handler(opts["handler"])
    limits = Limits(max_file_bytes=opts["max_file_bytes"], read_timeout=opts["read_timeout"],
                    body_timeout=opts["body_timeout"])
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
            files = await handler(chunks(), request.headers.get("content-type"),
                                  opts["folder"], limits)
        except Rejected as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:
            return JSONResponse({"error": f"{handler.__name__} raised "
                                          f"{describe_error(exc, handler)}"}, status_code=500)
        try:
            return JSONResponse({"files": files}, status_code=201)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": f"{handler.__name__} returned something JSON cannot "
                                          f"encode: {exc}"}, status_code=500)

    return Starlette(routes=[Route("/health", health), Route("/stats", stats),
                             Route("/upload", upload, methods=["POST"])])
