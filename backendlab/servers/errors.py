"""The servers' one error vocabulary: `Rejected`, the handlers that answer it, one JSON body.

Every error a server answers is JSON `{"error": "one line a client can act on", ...}`: a
`Rejected` raised anywhere in a request (its `fields` join the body, its `headers` the answer),
Starlette's own refusals (a 404 or a 405 names the server's routes), a client that left mid-body
(a bare 400: nobody reads it), and anything unexpected (a 500 with the exception in one line).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from backendlab.describe import describe_error
from backendlab.servers import describe_routes


class Rejected(Exception):
    """A request refused with an HTTP `status` and a one-line `message`; `headers` go with the
    answer (Retry-After, say) and `fields` join its JSON body."""

    def __init__(self, status: int, message: str, headers: dict | None = None, **fields):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers, self.fields = headers or {}, fields

    def __reduce__(self):
        # pickled by a process pool that parses for a server: keep every part, not just the text
        return _rebuild, (self.status, self.message, self.headers, self.fields)

    def body(self) -> dict:
        return {"error": self.message, **self.fields}

    def answer(self) -> JSONResponse:
        """The JSON response a server sends for this refusal."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _rebuild(status: int, message: str, headers: dict, fields: dict) -> Rejected:
    return Rejected(status, message, headers, **fields)


def handlers(routes: dict[str, str]) -> dict:
    """The `exception_handlers=` of a server whose routes are `routes`: every error as JSON."""

    async def rejected(_request: Request, exc: Rejected) -> Response:
        return exc.answer()

    async def http_error(request: Request, exc: HTTPException) -> Response:
        where = f"{request.method} {request.url.path}"
        message = {404: f"no route {where}; routes: {describe_routes(routes)}",
                   405: f"{request.method} is not allowed on {request.url.path}; routes: "
                        f"{describe_routes(routes)}"}.get(exc.status_code, str(exc.detail))
        return Rejected(exc.status_code, message, exc.headers).answer()

    async def client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
        # the client left mid-body and reads no answer: end the request without a 500
        return Response(status_code=400)

    async def internal(_request: Request, exc: Exception) -> Response:
        return Rejected(500, f"internal error: {describe_error(exc)[:300]}").answer()

    return {Rejected: rejected, HTTPException: http_error, ClientDisconnect: client_gone,
            Exception: internal}
