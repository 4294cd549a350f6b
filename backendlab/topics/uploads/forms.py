"""The client side: multipart/form-data bodies, well-formed, huge (generated as they stream) or
broken on purpose, and sample files whose bytes are (or only claim to be) a given type."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

BOUNDARY = "backendlab-7d3a9f"
CHUNK = 64 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
SAMPLES = {
    "png": PNG_MAGIC + bytes(range(256)) * 4,
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n" + b"0" * 600 + b"\n%%EOF\n",
    "elf": b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"\x00" * 600,
    "html": b"<!doctype html><html><body><script>fetch('/steal?c='+document.cookie)</script>"
            + b" " * 600 + b"</body></html>",
}


@dataclass(frozen=True)
class Part:
    """One part of a form: a text field (no filename) or a file."""

    name: str
    data: bytes = b""
    filename: str | None = None
    content_type: str | None = None

    def header(self, boundary: str = BOUNDARY) -> bytes:
        disposition = f'form-data; name="{self.name}"'
        if self.filename is not None:
            disposition += f'; filename="{_quoted(self.filename)}"'
        lines = [f"--{boundary}", f"Content-Disposition: {disposition}"]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


def content_type(boundary: str = BOUNDARY) -> str:
    return f"multipart/form-data; boundary={boundary}"


def headers(user: str | None = "alice", boundary: str = BOUNDARY) -> dict[str, str]:
    """Request headers for a form body, with the `X-User` the upload server asks for."""
    return {"content-type": content_type(boundary), **({"x-user": user} if user else {})}


def encode(parts: list[Part], boundary: str = BOUNDARY) -> bytes:
    """A complete multipart/form-data body."""
    body = b"".join(part.header(boundary) + part.data + b"\r\n" for part in parts)
    return body + f"--{boundary}--\r\n".encode()


def big_file(size: int, filename: str = "big.png", field: str = "file",
             head: bytes = SAMPLES["png"], boundary: str = BOUNDARY,
             seconds: float = 0.0) -> Iterator[bytes]:
    """A body with one `size`-byte file (`head`, then zeros), generated chunk by chunk so the
    client holds one chunk, however big the file. `seconds` spreads the sending over that time,
    as a client on a real network would."""
    yield Part(field, filename=filename, content_type="image/png").header(boundary)
    yield head[:size]
    left = size - len(head[:size])
    filler, pause = bytes(CHUNK), seconds / max(1, left // CHUNK)
    while left > 0:
        yield filler[:min(CHUNK, left)]
        left -= CHUNK
        if pause:
            time.sleep(pause)
    yield f"\r\n--{boundary}--\r\n".encode()


def png(size: int = len(SAMPLES["png"])) -> bytes:
    """Exactly `size` bytes (16 or more) that sniff as image/png."""
    return (SAMPLES["png"] + bytes(max(0, size - len(SAMPLES["png"]))))[:max(size, 16)]
