"""Upload server for notebook 02: multipart uploads with limits, and presigned S3 URLs.

Every request but /health and /stats names its user in an `X-User` header (a stand-in for real
authentication, which is not this lesson).

  GET  /health               answers at once
  GET  /stats                body bytes in and out, CPU seconds, RSS, files on disk, rows, pid
  POST /upload               multipart/form-data, stored per --mode: memory (the whole file in
                             RAM, then written), spooled (Starlette's form: RAM up to 1 MB, then a
                             temp file), stream (each chunk to its final file as it arrives)
  GET  /local/{id}/link      the owner gets an HMAC-signed link to a stored file, valid briefly
  GET  /local/{id}           the file, for a link whose signature holds and has not expired
                             (with `X-Content-Type-Options: nosniff`)
  POST /presign              JSON {filename, content_type}: a presigned POST to S3 under the
                             user's key prefix, with a size range and the content type signed in
  POST /complete             JSON {key}: HEAD + sniff the object; records a row in SQL only when it
                             exists and matches, deletes it when it does not. A presign ticket
                             lives as long as its presigned POST, and is used up by one /complete
  GET  /files/{id}/download  the owner gets a short-lived presigned GET; another user gets 403
  POST /proxy                multipart/form-data streamed through this server into S3 (to compare
                             with the direct upload)

Limits are enforced while the body streams: 413 for a file, field or part count over its limit,
415 for a type that is not allowed or does not match its bytes, 400 for a broken body, 408 when
the client stalls. Nothing of a refused request stays on disk or in S3. The upload folder (a temp
folder by default) and a bucket made by this run are removed when the server stops. It runs with
one worker only (--workers 2 is refused): its links, tickets and owners live in that worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from backendlab.servers.errors import Rejected, handlers
from backendlab.servers.flags import add_flags, from_options, option, whole_number
from backendlab.services.s3 import delete_bucket
from backendlab.topics.uploads import filetypes, presign, signing
from backendlab.topics.uploads.limits import MB, Limits, timed_receive
from backendlab.topics.uploads.metadata import FileTable
from backendlab.topics.uploads.multipart import MultipartReader, StoredFile, Upload, boundary_of
from backendlab.topics.uploads.names import display_name, stored_name
from backendlab.topics.uploads.sinks import FileSink, MemorySink, S3Sink

MODES = ("stream", "memory", "spooled")
# A link's signing secret, the presign tickets and the stored files' owners live in one worker's
# memory: another worker would refuse that worker's links and tickets.
SINGLE_WORKER = True
USER = re.compile(r"[A-Za-z0-9_-]{1,32}")
ROUTES = {"GET /health": "", "GET /stats": "", "POST /upload": "multipart, X-User",
          "GET /local/{id}/link": "a signed link", "GET /local/{id}": "the file",
          "POST /presign": "a presigned S3 POST", "POST /complete": "check and record",
          "GET /files/{id}/download": "a presigned GET", "POST /proxy": "through to S3"}


@dataclass(frozen=True)
class Options:
    """How the server stores uploads and how long its links live (its `Limits` are flags too)."""

    mode: str = option("stream", "where /upload keeps a file while it arrives", choices=MODES)
    type_check: str = option("magic", "magic: bytes + extension allowlist; content-type: trust "
                                      "the client", choices=filetypes.CHECKS)
    upload_dir: str | None = option(None, "folder for stored files (default: a temp folder "
                                          "removed at exit)")
    bucket: str | None = option(None, "S3 bucket (default: one made on first use, deleted at "
                                      "exit)")
    link_seconds: int = option(presign.DOWNLOAD_SECONDS, "how long signed and presigned "
                               "download links live", parse=whole_number(1))
    upload_seconds: int = option(presign.UPLOAD_SECONDS, "how long a presigned POST, and the "
                                 "ticket to complete it, live", parse=whole_number(1))


def add_arguments(parser) -> None:
    add_flags(parser, Options)
    add_flags(parser, Limits)


class App:
    """The server's state (limits, folder, bucket, table, counters) and its handlers."""

    def __init__(self, options: Options, limits: Limits):
        self.mode = options.mode
        self.check = filetypes.checker(options.type_check)
        self.limits = limits
        self.link_seconds = options.link_seconds
        self.upload_seconds = options.upload_seconds
        self.own_folder = not options.upload_dir
        self.folder = Path(options.upload_dir or tempfile.mkdtemp(prefix="backendlab-uploads-"))
        self.bucket = options.bucket
        self.own_bucket = self.bucket is None
        self.secret = secrets.token_bytes(32)
        self.local: dict[str, dict] = {}
        self.pending: dict[str, dict] = {}
        self._s3 = None
        self._table: FileTable | None = None
        self.bytes_received = self.bytes_sent = self.last_upload_bytes = 0
        self.process = psutil.Process()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        try:
            yield
        finally:
            await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Remove what this run made: its bucket, its table, its upload folder. Each step runs
        even when an earlier one fails (S3 gone, database gone); the first error is raised last."""
        steps = []
        if self._s3 is not None and self.own_bucket:
            steps.append(lambda: delete_bucket(self._s3, self.bucket))
        if self._table is not None:
            steps.append(self._table.drop)
        if self.own_folder:
            steps.append(lambda: shutil.rmtree(self.folder))
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    # shared services, reached on first use so /upload works without S3 or SQL ---------------

    def s3(self):
        if self._s3 is None:
            from botocore.config import Config

            from backendlab.services.s3 import s3_client
            client = s3_client(config=Config(signature_version="s3v4"))
            if self.own_bucket:
                self.bucket = f"backendlab-uploads-{uuid.uuid4().hex[:12]}"
                client.create_bucket(Bucket=self.bucket)
            self._s3 = client
        return self._s3

    def table(self) -> FileTable:
        if self._table is None:
            from backendlab.services.sql import database_url
            self._table = FileTable(database_url(), f"upload_files_{uuid.uuid4().hex[:12]}")
        return self._table

    # requests ---------------------------------------------------------------------------------

    def counting(self, asgi_app):
        """Wrap the ASGI app so every body byte received and sent is counted (for /stats); an
        upload's own count is in `scope["body_bytes"]` while it runs."""
        async def counted_app(scope, receive, send):
            if scope["type"] != "http":
                return await asgi_app(scope, receive, send)
            read = [0]

            async def counted_receive():
                message = await receive()
                read[0] += len(message.get("body", b""))
                self.bytes_received += len(message.get("body", b""))
                return message

            async def counted_send(message):
                self.bytes_sent += len(message.get("body", b""))
                await send(message)

            try:
                await asgi_app({**scope, "body_bytes": read}, counted_receive, counted_send)
            finally:
                if scope["path"] in ("/upload", "/proxy"):
                    self.last_upload_bytes = read[0]

        return counted_app

    def _timed(self, request: Request) -> Request:
        """The request with a receive that refuses a stalled client with 408."""
        return Request(request.scope, timed_receive(request.receive, self.limits.read_timeout,
                                                    self.limits.body_timeout))

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    async def stats(self, _request: Request) -> Response:
        cpu = self.process.cpu_times()
        return JSONResponse({
            "bytes_received": self.bytes_received, "bytes_sent": self.bytes_sent,
            "last_upload_bytes": self.last_upload_bytes,
            "cpu_seconds": cpu.user + cpu.system, "rss": self.process.memory_info().rss,
            "files_on_disk": sum(1 for _ in self.folder.iterdir()), "mode": self.mode,
            "pending": len(self.pending),
            "rows": self._table.count() if self._table is not None else 0,
            "limits": self.limits.as_dict(), "pid": os.getpid()})

    async def upload(self, request: Request) -> Response:
        user = _user(request)
        request = self._timed(request)
        if self.mode == "spooled":
            result = await self._spooled(request)
        else:
            sink = FileSink if self.mode == "stream" else MemorySink
            reader = MultipartReader(request.headers.get("content-type"), self.limits,
                                     lambda ext, _mime: sink(self.folder, stored_name(ext)),
                                     self.check)
            result = await reader.read(request.stream())
        files = []
        for stored in result.files:
            file_id = uuid.uuid4().hex
            self.local[file_id] = {"owner": user, "path": self.folder / stored.stored["stored_as"],
                                   "name": stored.name}
            files.append({"id": file_id, **stored.as_dict()})
        return JSONResponse({"mode": self.mode, "files": files, "fields": result.fields,
                             "bytes_read": result.bytes_read}, status_code=201)

    async def _spooled(self, request: Request) -> Upload:
        """Starlette's form parser: files spool to temp files; size is known only at the end."""
        boundary_of(request.headers.get("content-type"))
        try:
            form = await request.form(max_files=self.limits.max_files,
                                      max_fields=self.limits.max_fields,
                                      max_part_size=self.limits.max_field_bytes)
        except HTTPException as exc:
            raise Rejected(413 if "Too many" in exc.detail or "exceeded" in exc.detail else 400,
                           exc.detail) from None
        result, written = Upload(bytes_read=request.scope["body_bytes"][0]), []
        try:
            for name, value in form.multi_items():
                if not isinstance(value, UploadFile):
                    result.fields[name] = value
                    continue
                if value.size > self.limits.max_file_bytes:
                    raise Rejected(413, f"file {display_name(value.filename)!r} is over the "
                                        f"{self.limits.max_file_bytes}-byte limit (found after "
                                        "spooling all of it)")
                ext = self.check(value.headers.get("content-type"), value.filename,
                                 await value.read(filetypes.HEAD_BYTES))
                target = self.folder / stored_name(ext)
                written.append(target)
                await value.seek(0)
                await asyncio.to_thread(_copy, value.file, target)
                result.files.append(StoredFile(name, display_name(value.filename), value.size,
                                               filetypes.ALLOWED[ext], {"stored_as": target.name}))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        finally:
            await form.close()
        return result

    async def local_link(self, request: Request) -> Response:
        record = self._owned(self.local.get(request.path_params["file_id"]), _user(request))
        path = request.url_for("local_file", file_id=request.path_params["file_id"]).path
        return JSONResponse({"url": signing.signed_url(self.secret, path, self.link_seconds),
                             "expires_in": self.link_seconds, "name": record["name"]})

    async def local_file(self, request: Request) -> Response:
        record = self.local.get(request.path_params["file_id"])
        signing.verify(self.secret, request.url.path, request.query_params.get("expires"),
                       request.query_params.get("signature"))
        if record is None:
            raise Rejected(404, "no such file")
        # a stored file is served as its sniffed type and no other: no browser guessing HTML
        return FileResponse(record["path"], filename=record["name"],
                            headers={"X-Content-Type-Options": "nosniff"})

    async def presign_upload(self, request: Request) -> Response:
        user = _user(request)
        body = await _json(request, "filename", "content_type")
        ext = filetypes.extension_allowed(body["filename"])
        if filetypes.ALLOWED[ext] != body["content_type"]:
            raise Rejected(415, f"a .{ext} file must be sent as {filetypes.ALLOWED[ext]}, "
                                f"not {body['content_type']!r}")
        key = presign.new_key(user, ext)
        post = await asyncio.to_thread(presign.presigned_post, self.s3(), self.bucket, key,
                                       body["content_type"], self.limits.max_file_bytes,
                                       self.upload_seconds)
        self._drop_expired()
        self.pending[key] = {"owner": user, "type": body["content_type"],
                             "name": display_name(body["filename"]),
                             "expires": time.monotonic() + self.upload_seconds}
        return JSONResponse({**post, "key": key, "max_bytes": self.limits.max_file_bytes,
                             "expires_in": self.upload_seconds})

    def _drop_expired(self) -> None:
        """Forget tickets whose presigned POST has expired: `pending` holds at most what one
        upload lifetime of /presign calls issues, however many clients never complete."""
        now = time.monotonic()
        for key in [k for k, ticket in self.pending.items() if ticket["expires"] <= now]:
            del self.pending[key]

    async def complete(self, request: Request) -> Response:
        user = _user(request)
        key = (await _json(request, "key"))["key"]
        self._drop_expired()
        self._owned(self.pending.get(key), user)
        # taken before any await: a second /complete for the key meanwhile finds nothing (404)
        promise = self.pending.pop(key)
        try:
            found = await asyncio.to_thread(presign.verify_object, self.s3(), self.bucket, key,
                                            self.limits.max_file_bytes, promise["type"])
            row = self.table().add(uuid.uuid4().hex, user, key, promise["name"], found["size"],
                                   found["type"])
        except Rejected as exc:
            if exc.status == 409:  # no object yet: the client may upload and complete again
                self.pending[key] = promise
            raise
        except Exception:
            self.pending[key] = promise  # S3 or SQL failed, not the upload: may be retried
            raise
        return JSONResponse(row, status_code=201)

    async def download(self, request: Request) -> Response:
        user = _user(request)
        row = self._owned(self.table().get(request.path_params["file_id"]), user)
        url = presign.presigned_get(self.s3(), self.bucket, row["key"], row["name"],
                                    self.link_seconds)
        return JSONResponse({"url": url, "expires_in": self.link_seconds, "name": row["name"]})

    async def proxy(self, request: Request) -> Response:
        user = _user(request)
        request = self._timed(request)
        client = self.s3()
        reader = MultipartReader(request.headers.get("content-type"), self.limits,
                                 lambda ext, mime: S3Sink(client, self.bucket,
                                                          presign.new_key(user, ext), mime),
                                 self.check)
        result = await reader.read(request.stream())
        rows = [self.table().add(uuid.uuid4().hex, user, f.stored["stored_as"], f.name, f.size,
                                 f.type) for f in result.files]
        return JSONResponse({"files": rows, "bytes_read": result.bytes_read}, status_code=201)

    @staticmethod
    def _owned(record: dict | None, user: str) -> dict:
        if record is None:
            raise Rejected(404, "no such file")
        if record["owner"] != user:
            raise Rejected(403, "this file belongs to another user")
        return record


def _user(request: Request) -> str:
    user = request.headers.get("x-user", "")
    if not USER.fullmatch(user):
        raise Rejected(401, "send X-User: NAME (letters, digits, - and _), this server's "
                            "stand-in for authentication")
    return user


async def _json(request: Request, *names: str) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not all(isinstance(body.get(n), str) for n in names):
        raise Rejected(400, f"send a JSON object with string fields {', '.join(names)}")
    return body


def _copy(source, target: Path) -> None:
    with open(target, "xb") as out:
        shutil.copyfileobj(source, out, MB)


def create_app() -> Starlette:
    """The ASGI app, configured from the options the server was started with."""
    app = App(from_options(Options), from_options(Limits))
    routes = [
        Route("/health", app.health),
        Route("/stats", app.stats),
        Route("/upload", app.upload, methods=["POST"]),
        Route("/local/{file_id}/link", app.local_link),
        Route("/local/{file_id}", app.local_file, name="local_file"),
        Route("/presign", app.presign_upload, methods=["POST"]),
        Route("/complete", app.complete, methods=["POST"]),
        Route("/files/{file_id}/download", app.download),
        Route("/proxy", app.proxy, methods=["POST"]),
    ]
    return app.counting(Starlette(routes=routes, lifespan=app.lifespan,
                                  exception_handlers=handlers(ROUTES)))
