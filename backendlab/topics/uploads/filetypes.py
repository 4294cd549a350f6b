"""Which files an endpoint accepts, decided from the bytes, not from what the client says.

A part's Content-Type header and its filename are typed by the client: a renamed executable or an
HTML page with a script arrives as `photo.png`, `image/png`. The first bytes of real formats are
fixed signatures ("magic bytes": PNG starts `\\x89PNG`, PDF `%PDF-`), so the server sniffs them
and accepts a file only when the sniffed type is on the allowlist and agrees with the extension
and the declared type.
"""

from __future__ import annotations

import filetype

from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.names import extension

# extension -> the MIME type its bytes must sniff as
ALLOWED = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
           "webp": "image/webp", "pdf": "application/pdf"}
# MIME type -> the extension stored files get (the first listed: jpg, not jpeg)
CANONICAL = {mime: ext for ext, mime in reversed(ALLOWED.items())}
HEAD_BYTES = 512  # every allowed signature sits in the first few dozen bytes
CHECKS = ("magic", "content-type")


def media_type(header: str | None) -> str:
    """`image/png` from `image/PNG; charset=x`; "" for a missing header."""
    return (header or "").split(";")[0].strip().lower()


def sniff(head: bytes) -> str | None:
    """The MIME type the first bytes of a file show, or None when no known signature matches."""
    kind = filetype.guess(head)
    return kind.mime if kind else None


def extension_allowed(filename: str) -> str:
    ext = extension(filename)
    if ext not in ALLOWED:
        shown = f"extension .{ext}" if ext else "a name without an extension"
        raise Rejected(415, f"{shown} is not allowed; allowed: {', '.join(sorted(ALLOWED))}")
    return ext


def check_magic(declared: str | None, filename: str, head: bytes) -> str:
    """Accept a file when its bytes, extension and declared type agree on an allowed type; the
    extension to store it under. `head` is the file's first HEAD_BYTES (or all of a short file)."""
    if not head:
        raise Rejected(400, f"file {filename!r} is empty")
    ext = extension_allowed(filename)
    found = sniff(head)
    if found not in CANONICAL:
        what = f"really {found}" if found else "not a recognised file type"
        raise Rejected(415, f"{filename!r} is {what} (its first bytes are {head[:8]!r}); "
                            f"allowed: {', '.join(sorted(CANONICAL))}")
    if ALLOWED[ext] != found:
        raise Rejected(415, f"{filename!r} is named .{ext} but its bytes are {found}")
    if media_type(declared) != found:
        raise Rejected(415, f"{filename!r} was declared {media_type(declared) or 'without a type'} "
                            f"but its bytes are {found}")
    return CANONICAL[found]


def check_content_type(declared: str | None, filename: str, head: bytes) -> str:
    """The naive check: trust the part's Content-Type header (what `fileFilter` on `mimetype`
    does). Shown in notebook 02 to be fooled; never use it alone."""
    if not head:
        raise Rejected(400, f"file {filename!r} is empty")
    media = media_type(declared)
    if media not in CANONICAL:
        raise Rejected(415, f"Content-Type {media or 'none'} is not allowed")
    return CANONICAL[media]


def checker(name: str):
    """The check function called `name` ("magic" or "content-type")."""
    return {"magic": check_magic, "content-type": check_content_type}[name]
