"""CSV upload server for notebook 01: the same parse done on the event loop, streamed, or offloaded.

Endpoints (all uploads take `Content-Type: text/csv`, UTF-8):
  GET  /health                 answers at once, unless something blocks the event loop
  GET  /stats                  uploads in flight, the most ever in flight, spooled files, this pid
  POST /upload/buffered        read the whole body, then parse it on the event loop (the mistake)
  POST /upload/streamed        parse each chunk as it arrives; memory stays at one chunk
  POST /upload/thread          spool to disk, parse in `asyncio.to_thread` (the GIL still blocks)
  POST /upload/process         spool to disk, parse in a process pool (the loop stays free)
  POST /jobs                   spool to disk, queue the parse, answer 202 with a job id at once
  GET  /jobs/{id}              the job's status: queued, running, done (with counts) or failed

Malformed rows (wrong number of fields) are counted, not fatal. Bad requests get a JSON error: 415
for a wrong content type, 413 for a body over --max-bytes, 400 for a body that is not UTF-8 CSV,
503 with Retry-After when --max-concurrent uploads or --queue-size jobs are already waiting.
Spooled files are removed when the parse ends, the job ends, or the client disconnects.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import os
import re
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backendlab import processes
from backendlab.servers.errors import Rejected, handlers
from backendlab.servers.flags import add_flags, from_options, option, whole_number

MAX_RECORD = 1_000_000
UPLOAD_MODES = ("buffered", "streamed", "thread", "process")
ROUTES = {"GET /health": "slow when the loop is blocked", "GET /stats": "uploads in flight",
          "POST /upload/{mode}": "|".join(UPLOAD_MODES), "POST /jobs": "queue a parse",
          "GET /jobs/{id}": "a job's status"}
POOL_NICENESS = 10  # pool processes yield the CPU to the event loop, so /health stays fast


@dataclass(frozen=True)
class Options:
    """The server's limits and pool, each a flag of `serve eventloop`."""

    max_bytes: int = option(200_000_000, "largest upload accepted; larger ones get 413",
                            parse=whole_number(1))
    max_concurrent: int = option(0, "uploads processed at once; more get 503 + Retry-After "
                                    "(0: no limit)", parse=whole_number(0))
    retry_after: int = option(1, "seconds a refused client is told to wait",
                              parse=whole_number(0))
    pool_workers: int = option(2, "processes in the parse pool (used by /upload/process and "
                                  "/jobs)", parse=whole_number(1))
    queue_size: int = option(16, "jobs that may wait in the queue; more get 503 + Retry-After",
                             parse=whole_number(1))
    spool_dir: str | None = option(None, "folder for spooled uploads (default: the system temp "
                                         "folder)")


def add_arguments(parser) -> None:
    add_flags(parser, Options)


class CsvCounter:
    """Counts data rows and malformed rows (a field count unlike the header's); blank lines skip."""

    def __init__(self):
        self.width: int | None = None
        self.rows = 0
        self.malformed = 0

    def add(self, records) -> None:
        for record in records:
            if not record:
                continue
            if self.width is None:
                self.width = len(record)
                continue
            self.rows += 1
            self.malformed += len(record) != self.width

    def result(self) -> dict:
        return {"rows": self.rows, "malformed": self.malformed}


def parse_text(text: str) -> dict:
    """Parse a whole CSV text; `list(csv.reader(...))` is one C call that holds the GIL throughout."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise Rejected(400, f"not a valid CSV: {exc}") from None
    counter = CsvCounter()
    counter.add(records)
    return counter.result()


def pool_worker_init() -> None:
    """Pool workers yield the CPU to the event loop (lower priority) and die with the server."""
    os.nice(POOL_NICENESS)
    processes.die_with_parent()


def parse_file(path: str) -> dict:
    """Read and parse a spooled CSV file whole (run in a thread or a pool process)."""
    try:
        with open(path, encoding="utf-8", newline="") as source:
            text = source.read()
    except UnicodeDecodeError as exc:
        raise Rejected(400, f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_text(text)


class RecordBoundary:
    """Finds where complete CSV records end in text that arrives in pieces, in one forward pass.

    It follows the csv module's rule: a quote opens a quoted field only at the start of a field;
    inside one, `""` is a quote and a newline belongs to the field. Its state carries from piece
    to piece, so each character is looked at once however the text is split, and the work is a
    few C-level searches per quoted field rather than Python code per character.
    """

    _QUOTE_AT_FIELD_START = re.compile(r'(?<=[,\n])"')
    FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED = range(4)

    def __init__(self):
        self.state = self.FIELD_START

    def scan(self, text: str, start: int = 0) -> int:
        """Scan text[start:]; return the index just past the last record end in it (0 if none)."""
        end, pos = 0, start
        while pos < len(text):
            if self.state == self.QUOTED:
                pos = self._leave_quotes(text, pos)
                continue
            if self.state == self.QUOTE_IN_QUOTED:
                self.state = self.QUOTED if text[pos] == '"' else self.UNQUOTED
                pos += self.state == self.QUOTED
                continue
            if self.state == self.FIELD_START and text[pos] == '"':
                self.state, pos = self.QUOTED, pos + 1
                continue
            opening = self._QUOTE_AT_FIELD_START.search(text, pos)
            stop = opening.start() if opening else len(text)
            newline = text.rfind("\n", pos, stop)
            if newline >= 0:
                end = newline + 1
            if opening:
                self.state, pos = self.QUOTED, stop + 1
            else:
                tail = text[max(pos, end):]
                if tail:
                    self.state = self.FIELD_START if tail.endswith(",") else self.UNQUOTED
                elif newline >= 0:
                    self.state = self.FIELD_START
                pos = len(text)
        return end

    def _leave_quotes(self, text: str, pos: int) -> int:
        """Inside a quoted field: find its closing quote (skipping `""`); return where to go on."""
        quote = text.find('"', pos)
        if quote < 0:
            return len(text)
        if quote + 1 == len(text):
            self.state = self.QUOTE_IN_QUOTED
            return len(text)
        if text[quote + 1] == '"':
            return quote + 2
        self.state = self.UNQUOTED
        return quote + 1


class ChunkParser:
    """Parses a CSV fed in byte chunks, keeping only the unfinished last record between chunks."""

    def __init__(self, max_record: int = MAX_RECORD):
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._carry = ""
        self._boundary = RecordBoundary()
        self._max_record = max_record
        self.counter = CsvCounter()

    def feed(self, chunk: bytes) -> None:
        text = self._carry + self._decode(chunk)
        cut = self._boundary.scan(text, len(self._carry))
        self._parse(text[:cut])
        self._carry = text[cut:]
        if len(self._carry) > self._max_record:
            raise Rejected(400, f"a record is longer than {self._max_record} characters "
                                "(an unclosed quote?)")

    def close(self) -> dict:
        self._parse(self._carry + self._decode(b"", final=True))
        self._carry = ""
        return self.counter.result()

    def _decode(self, chunk: bytes, final: bool = False) -> str:
        try:
            return self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise Rejected(400, f"body is not UTF-8 text ({exc.reason})") from None

    def _parse(self, text: str) -> None:
        if text:
            try:
                self.counter.add(csv.reader(io.StringIO(text, newline="")))
            except csv.Error as exc:
                raise Rejected(400, f"not a valid CSV: {exc}") from None


class App:
    """The server's state (limits, counters, pool, job queue) and its request handlers."""

    def __init__(self, options: Options):
        self.max_bytes = options.max_bytes
        self.max_concurrent = options.max_concurrent
        self.retry_after = str(options.retry_after)
        self.pool_workers = options.pool_workers
        self.spool_dir = options.spool_dir or tempfile.gettempdir()
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=options.queue_size)
        self.jobs: dict[str, dict] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.spooled = 0
        self.pool: ProcessPoolExecutor | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        """Start the pool (warmed, so no request pays for a fork) and the job workers; on exit, stop
        them: pool processes ignore SIGTERM and would outlive uvicorn otherwise."""
        loop = asyncio.get_running_loop()
        self.pool = ProcessPoolExecutor(max_workers=self.pool_workers, initializer=pool_worker_init)
        await asyncio.gather(*(loop.run_in_executor(self.pool, os.getpid)
                               for _ in range(self.pool_workers)))
        workers = [asyncio.create_task(self._job_worker()) for _ in range(self.pool_workers)]
        try:
            yield
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            while not self.queue.empty():
                _, path = self.queue.get_nowait()
                self._unspool(path)
            self.pool.shutdown(wait=True, cancel_futures=True)

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    async def stats(self, _request: Request) -> Response:
        return JSONResponse({"in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                             "spooled": self.spooled, "queued": self.queue.qsize(),
                             "pid": os.getpid()})

    async def upload(self, request: Request) -> Response:
        mode = request.path_params["mode"]
        if mode not in UPLOAD_MODES:
            raise Rejected(404, f"unknown upload mode {mode!r}; use one of {', '.join(UPLOAD_MODES)}")
        self._check_headers(request)
        if self.max_concurrent and self.in_flight >= self.max_concurrent:
            raise Rejected(503, f"server busy: {self.in_flight} uploads in progress; retry later",
                          {"Retry-After": self.retry_after})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            counts = await getattr(self, f"_parse_{mode}")(request)
        finally:
            self.in_flight -= 1
        return JSONResponse({"mode": mode, **counts, "pid": os.getpid()})

    async def submit_job(self, request: Request) -> Response:
        self._check_headers(request)
        self._check_queue()
        path = await self._spool(request)
        try:
            self._check_queue()
        except Rejected:
            self._unspool(path)
            raise
        job_id = uuid.uuid4().hex
        self.jobs[job_id] = {"id": job_id, "status": "queued"}
        self.queue.put_nowait((job_id, path))
        url = f"/jobs/{job_id}"
        return JSONResponse({"job_id": job_id, "status": "queued", "status_url": url},
                            status_code=202, headers={"Location": url})

    async def job_status(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            raise Rejected(404, "no such job (ids are kept until the server restarts)")
        return JSONResponse(job)

    def _check_headers(self, request: Request) -> None:
        ctype = request.headers.get("content-type", "")
        media, _, params = ctype.partition(";")
        if media.strip().lower() != "text/csv":
            raise Rejected(415, f"expected Content-Type text/csv, got {ctype or 'none'!r}")
        options = dict(part.strip().lower().partition("=")[::2] for part in params.split(";") if part.strip())
        charset = options.get("charset", "utf-8").strip('"')
        if charset not in ("utf-8", "utf8"):
            raise Rejected(415, f"only UTF-8 CSV is accepted, got charset {charset!r}")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise Rejected(413, f"body of {int(length)} bytes is over the {self.max_bytes}-byte limit")

    def _check_queue(self) -> None:
        if self.queue.full():
            raise Rejected(503, f"job queue full ({self.queue.maxsize} waiting); retry later",
                          {"Retry-After": self.retry_after})

    async def _chunks(self, request: Request):
        """The body's chunks, refusing with 413 as soon as it passes --max-bytes."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise Rejected(413, f"body is over the {self.max_bytes}-byte limit")
            yield chunk

    async def _parse_buffered(self, request: Request) -> dict:
        body = b"".join([chunk async for chunk in self._chunks(request)])
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected(400, f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        return parse_text(text)

    async def _parse_streamed(self, request: Request) -> dict:
        parser = ChunkParser()
        async for chunk in self._chunks(request):
            parser.feed(chunk)
        return parser.close()

    async def _parse_thread(self, request: Request) -> dict:
        path = await self._spool(request)
        try:
            return await asyncio.to_thread(parse_file, str(path))
        finally:
            self._unspool(path)

    async def _parse_process(self, request: Request) -> dict:
        path = await self._spool(request)
        try:
            return await self._in_pool(path)
        finally:
            self._unspool(path)

    async def _in_pool(self, path: Path) -> dict:
        """Parse a spooled file in the pool; a pool whose worker died is replaced, and the request
        that met it is told to retry (503) instead of getting a 500."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, parse_file, str(path))
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ProcessPoolExecutor(max_workers=self.pool_workers, initializer=pool_worker_init)
            raise Rejected(503, "a parse worker died; the pool was restarted, try again",
                          {"Retry-After": self.retry_after}) from None

    async def _spool(self, request: Request) -> Path:
        """Write the body to a temp file chunk by chunk; remove it if the upload fails midway."""
        fd, name = tempfile.mkstemp(prefix="backendlab-upload-", suffix=".csv", dir=self.spool_dir)
        self.spooled += 1
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in self._chunks(request):
                    out.write(chunk)
        except BaseException:
            self._unspool(Path(name))
            raise
        return Path(name)

    def _unspool(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.spooled -= 1

    async def _job_worker(self) -> None:
        while True:
            job_id, path = await self.queue.get()
            job = self.jobs[job_id]
            job["status"] = "running"
            try:
                job.update(await self._in_pool(path), status="done")
            except Rejected as exc:
                job.update(status="failed", error=exc.message)
            except Exception as exc:
                job.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._unspool(path)


def create_app() -> Starlette:
    """The ASGI app, configured from the options the server was started with."""
    app = App(from_options(Options))
    routes = [
        Route("/health", app.health),
        Route("/stats", app.stats),
        Route("/upload/{mode}", app.upload, methods=["POST"]),
        Route("/jobs", app.submit_job, methods=["POST"]),
        Route("/jobs/{job_id}", app.job_status),
    ]
    return Starlette(routes=routes, lifespan=app.lifespan, exception_handlers=handlers(ROUTES))
