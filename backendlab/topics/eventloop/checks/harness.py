"""Running the learner's summarize_csv: fed chunks directly on a loop of its own, and in a csvlab
server (started on first use) that the checks upload to and measure during a 20 MB upload.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass

import httpx

from backendlab.checks import CheckFailed, describe_error
from backendlab.checks.child import start_lab_server
from backendlab.measure import LatencyProbe, RssSampler
from backendlab.servers import RunningServer
from backendlab.topics.eventloop.checks.csvdata import HEADER, SAMPLE, random_rows, write_csv

BIG_BYTES = 20 * 2**20
SMALL_TIMEOUT = 15.0
BIG_TIMEOUT = 120.0


def require_async(fn) -> None:
    """Refuse a function the checks cannot await, saying what to pass instead."""
    if not inspect.iscoroutinefunction(fn):
        raise CheckFailed(f"pass your `async def` function, e.g. check(summarize_csv); got {fn!r}")


def _run(fn, coroutine, timeout: float = SMALL_TIMEOUT):
    """Run a coroutine of `fn` on a loop of its own in a thread (a notebook's loop is busy)."""
    box = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="lab01-direct")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise CheckFailed(f"{fn.__name__} did not return within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def feed(fn, data: bytes, size: int) -> dict:
    """Call `fn` with `data` in `size`-byte chunks, then the empty chunk Starlette ends with."""
    require_async(fn)

    async def chunks():
        for start in range(0, len(data), size):
            yield data[start:start + size]
        yield b""

    return _run(fn, fn(chunks()))


@dataclass
class BigUpload:
    """What the 20 MB upload measured: /health's p99 latency (s), the server's memory growth and
    how long the upload took (s)."""

    p99: float
    growth: int
    seconds: float


def mb(size: float) -> str:
    """A size in MB, to one decimal below 1 MB."""
    return f"{size / 2**20:.0f} MB" if abs(size) >= 2**20 else f"{size / 2**20:.1f} MB"


class Lab:
    """The learner's function and the csvlab server running it, started on first use."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "your function")
        self._server: RunningServer | None = None
        self._folder: str | None = None
        self._failure: str | None = None
        self._big: BigUpload | str | None = None

    def server(self) -> RunningServer:
        if self._failure is not None:
            raise CheckFailed(self._failure)
        if self._server is None:
            try:
                require_async(self.fn)
                self._folder = tempfile.mkdtemp(prefix="backendlab-lab01-")
                self._server = start_lab_server("csvlab", self.fn, self._folder)
            except CheckFailed as exc:
                self._failure = str(exc)
                raise
        return self._server

    def upload(self, body, timeout: float = SMALL_TIMEOUT):
        """POST `body` as text/csv and return the JSON answer, or fail with the server's message."""
        url = self.server().url + "/upload"
        try:
            response = httpx.post(url, content=body, headers={"content-type": "text/csv"},
                                  timeout=timeout)
        except httpx.TimeoutException:
            raise CheckFailed(f"no answer to the upload within {timeout:.0f} s") from None
        except httpx.HTTPError as exc:
            raise CheckFailed(f"the upload failed: {describe_error(exc)}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": response.text[:200]}
        if response.status_code != 200:
            raise CheckFailed(f"the server answered {response.status_code}: "
                              f"{answer.get('error', answer)}")
        return answer

    def big_upload(self) -> BigUpload:
        """The 20 MB upload, measured once for both the latency and the memory check."""
        if self._big is None:
            try:
                self._big = self._measure_big()
            except CheckFailed as exc:
                self._big = str(exc)
        if isinstance(self._big, str):
            raise CheckFailed(self._big)
        return self._big

    def _measure_big(self) -> BigUpload:
        try:
            self.upload(SAMPLE.encode())
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}; fix the checks above first") from None
        block = write_csv(random_rows(10_000, 3)).encode()
        count = BIG_BYTES // len(block) + 1

        def body():
            yield write_csv([HEADER]).encode()
            for _ in range(count):
                yield block

        server = self.server()
        with RssSampler(server.pid, interval=0.01) as rss, \
                LatencyProbe(server.url + "/health", interval=0.02) as probe:
            started = time.perf_counter()
            result = self.upload(body(), timeout=BIG_TIMEOUT)
            seconds = time.perf_counter() - started
        rows = 10_000 * count
        if not isinstance(result, dict) or result.get("rows") != rows:
            got = result.get("rows") if isinstance(result, dict) else result
            raise CheckFailed(f"the {mb(BIG_BYTES)} upload reported rows={got!r}, expected "
                              f"{rows}: fix the correctness checks first")
        return BigUpload(probe.result.p99, rss.trace.growth, seconds)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
