"""Signed, expiring URLs from scratch: what an S3 presigned URL does, in a dozen lines.

The server signs (path, expiry) with a secret only it knows (HMAC-SHA256) and puts the expiry
and signature in the query string. Anyone holding the URL can use it until it expires; changing
the path, the expiry or one hex digit of the signature breaks it. S3's Signature V4 signs more
(method, headers, a key derived per day, region and service) on the same principle.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from urllib.parse import urlencode

from backendlab.servers.errors import Rejected


def signature(secret: bytes, path: str, expires: int) -> str:
    """The hex HMAC-SHA256 of the path and the expiry time."""
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(secret: bytes, path: str, ttl: float, now: float | None = None) -> str:
    """`path?expires=...&signature=...`, valid for at least `ttl` seconds from `now` (the expiry is
    whole seconds, rounded up: rounding down could end a 1 s link almost at once)."""
    expires = math.ceil((time.time() if now is None else now) + ttl)
    return f"{path}?{urlencode({'expires': expires, 'signature': signature(secret, path, expires)})}"


def verify(secret: bytes, path: str, expires: str | None, given: str | None,
           now: float | None = None) -> None:
    """Return if the signature matches and has not expired; otherwise Rejected(403, why)."""
    if not expires or not expires.isdigit() or not given:
        raise Rejected(403, "the link is not signed (expires and signature are required)")
    if not hmac.compare_digest(signature(secret, path, int(expires)), given):
        raise Rejected(403, "the link's signature does not match: it was altered or forged")
    if int(expires) < (time.time() if now is None else now):
        raise Rejected(403, "the link has expired: ask for a new one")
