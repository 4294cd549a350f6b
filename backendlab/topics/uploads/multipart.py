"""A multipart/form-data reader that enforces every limit while the body streams in.

python-multipart's `MultipartParser` calls back for each header and each piece of part data as
bytes arrive. This reader counts parts and bytes in those callbacks and raises `Rejected` the
moment a limit is crossed, so a 10 GB body against a 1 MB limit costs the server about 1 MB of
reading, not 10 GB. A file's first bytes are held back until its type is checked; only then is a
sink opened. On any failure (a limit, a bad type, a broken body, a client that stalls or hangs
up) every sink of the request is discarded: nothing half-written remains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.filetypes import ALLOWED, HEAD_BYTES, check_magic, media_type
from backendlab.topics.uploads.limits import Limits
from backendlab.topics.uploads.names import display_name

MAX_HEADER_LINE_BYTES = 8 * 1024  # per header line of a part (python-multipart >= 0.0.34)


@dataclass
class StoredFile:
    """One accepted file: its form field, cleaned display name, size, sniffed type, and where the
    sink put it (`stored_as` plus whatever else the sink reports)."""

    field: str
    name: str
    size: int
    type: str
    stored: dict

    def as_dict(self) -> dict:
        return {"field": self.field, "name": self.name, "size": self.size, "type": self.type,
                **self.stored}


@dataclass
class Upload:
    """What a request carried: its files, its text fields, and the body bytes read."""

    files: list[StoredFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    bytes_read: int = 0


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or Rejected (415 or 400)."""
    if media_type(content_type) != "multipart/form-data":
        raise Rejected(415, f"send the upload as multipart/form-data, not {content_type or 'no type'!r}")
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:
        raise Rejected(400, "the multipart/form-data Content-Type has no valid boundary parameter")
    return boundary


class _Part:
    """The part being parsed: its headers, then either a file (head, sink) or a text field."""

    def __init__(self):
        self.headers: list[list[bytes]] = []
        self.name = ""
        self.filename: str | None = None
        self.content_type = ""
        self.size = 0
        self.head = bytearray()
        self.value = bytearray()
        self.sink = None
        self.type = ""


class MultipartReader:
    """Reads one request body: `await reader.read(chunks)` returns the `Upload` or raises Rejected.

    `open_sink(ext, mime)` makes the sink for an accepted file; `check_type(declared, filename,
    head)` returns the extension to store it under or raises (default: magic bytes).
    """

    def __init__(self, content_type: str | None, limits: Limits, open_sink: Callable,
                 check_type: Callable = check_magic):
        self.limits, self.open_sink, self.check_type = limits, open_sink, check_type
        self.parser = MultipartParser(boundary_of(content_type), callbacks={
            "on_part_begin": self._part_begin, "on_header_begin": self._header_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_headers_finished": self._headers_done,
            "on_part_data": self._part_data, "on_part_end": self._part_end, "on_end": self._end,
        }, max_header_size=MAX_HEADER_LINE_BYTES)
        self.upload = Upload()
        self._part: _Part | None = None
        self._ended: list[_Part] = []
        self._sinks: list = []
        self._done = False
        self._files = self._fields = 0

    async def read(self, chunks: AsyncIterator[bytes]) -> Upload:
        try:
            async for chunk in chunks:
                self.upload.bytes_read += len(chunk)
                self._feed(chunk)
                if self._part is not None and self._part.sink is not None:
                    await self._part.sink.settle()
                await self._finish_ended()
            if not self._done:
                raise Rejected(400, f"the multipart body ended early after {self.upload.bytes_read} "
                                    "bytes (no closing boundary): truncated upload")
        except BaseException:
            await self._discard_all()
            raise
        return self.upload

    def _feed(self, chunk: bytes) -> None:
        if self._done:
            return
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            raise Rejected(400, f"malformed multipart body: {exc}") from None

    async def _finish_ended(self) -> None:
        while self._ended:
            part = self._ended.pop(0)
            stored = await part.sink.finish()
            self.upload.files.append(StoredFile(part.name, display_name(part.filename), part.size,
                                                part.type, stored))

    async def _discard_all(self) -> None:
        for sink in self._sinks:
            await sink.discard()
        self._sinks = []

    # parser callbacks: plain functions called from parser.write ------------------------------

    def _part_begin(self) -> None:
        self._part = _Part()

    def _header_begin(self) -> None:
        self._part.headers.append([b"", b""])

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.headers[-1][0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.headers[-1][1] += data[start:end]

    def _headers_done(self) -> None:
        part = self._part
        headers = {name.decode("latin-1").lower(): bytes(value) for name, value in part.headers}
        # bytes in, bytes out: the parser keeps raw bytes, and a browser sends UTF-8 names raw
        kind, params = parse_options_header(headers.get("content-disposition", b""))
        if kind != b"form-data" or b"name" not in params:
            raise Rejected(400, "a part has no `Content-Disposition: form-data; name=...` header")
        part.name = params[b"name"].decode("utf-8", "replace")
        part.content_type = headers.get("content-type", b"").decode("latin-1")
        if b"filename" in params:
            part.filename = params[b"filename"].decode("utf-8", "replace")
            self._files += 1
            if self._files > self.limits.max_files:
                raise Rejected(413, f"too many files: at most {self.limits.max_files} per request")
        else:
            self._fields += 1
            if self._fields > self.limits.max_fields:
                raise Rejected(413, f"too many fields: at most {self.limits.max_fields} per request")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        part, piece = self._part, data[start:end]
        part.size += len(piece)
        if part.filename is None:
            if part.size > self.limits.max_field_bytes:
                raise Rejected(413, f"field {part.name!r} is over the "
                                    f"{self.limits.max_field_bytes}-byte limit")
            part.value += piece
            return
        if part.size > self.limits.max_file_bytes:
            raise Rejected(413, f"file {display_name(part.filename)!r} is over the "
                                f"{self.limits.max_file_bytes}-byte limit; stopped reading after "
                                f"{self.upload.bytes_read} bytes of the body")
        if part.sink is not None:
            part.sink.write(piece)
            return
        part.head += piece
        if len(part.head) >= HEAD_BYTES:
            self._open(part)

    def _open(self, part: _Part) -> None:
        """Check the type from the held-back first bytes, then open the sink and hand them over."""
        ext = self.check_type(part.content_type, part.filename, bytes(part.head))
        part.type = ALLOWED[ext]
        part.sink = self.open_sink(ext, part.type)
        self._sinks.append(part.sink)
        part.sink.write(bytes(part.head))
        part.head = bytearray()

    def _part_end(self) -> None:
        part, self._part = self._part, None
        if part.filename is None:
            self.upload.fields[part.name] = part.value.decode("utf-8", "replace")
            return
        if part.sink is None:
            self._open(part)
        self._ended.append(part)

    def _end(self) -> None:
        self._done = True
