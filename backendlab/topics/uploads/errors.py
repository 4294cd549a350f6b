"""The one refusal of the upload code: an HTTP status and a message a client can act on."""

from __future__ import annotations


class Rejected(Exception):
    """A request refused with `status` and a one-line `message` (the server answers it as JSON)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def __reduce__(self):
        return Rejected, (self.status, self.message)
