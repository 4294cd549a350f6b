"""Lab 01's checks: a CSV upload summarised as it streams, correctly, in constant memory.

`check(summarize_csv)` ships the learner's function to a real csvlab server (see
`backendlab.checks.child`), uploads CSVs to it, feeds it odd chunk sizes directly, and measures /health
latency and the server's memory during a 20 MB upload. The limits sit between what a streaming
handler and a buffer-then-parse handler measure on a 2-core machine, far from both.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import math
import random
import shutil
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache

import httpx

from backendlab.checks import Check, CheckFailed, Report, describe_error, run_lab
from backendlab.checks.child import start_lab_server
from backendlab.measure import LatencyProbe, RssSampler
from backendlab.servers import RunningServer

HEADER = ["customer", "amount", "quantity", "discount"]
LABELS = ["acme", "Smith, Jane", "Zoë", "東京商店", "O'Brien", "Ødegaard"]
SAMPLE = """customer,amount,quantity,discount
acme,12.50,3,0.10
"Smith, Jane",7.25,1,0
Zoë,n/a,2,0.05
東京商店,100,4

Ødegaard,40.75,2,0.25
"""
# Measured on 2 cores during the 20 MB upload: streaming, /health p99 40-220 ms and +2 MB;
# buffer-then-parse, p99 3.3-5.0 s and +372 MB; buffer then parse with awaits, +140 MB.
BIG_BYTES = 20 * 2**20
LATENCY_LIMIT = 1.0
MEMORY_LIMIT = BIG_BYTES // 2  # holding the body alone costs its full size
CHUNK_SIZES = (1, 7, 4096)
SMALL_TIMEOUT = 15.0
BIG_TIMEOUT = 120.0


def reference(text: str) -> dict:
    """The summary the contract asks for, computed from the whole text at once."""
    lines = csv.reader(text.split("\n"))
    columns = next((fields for fields in lines if fields), [])
    sums = dict.fromkeys(columns[1:], 0.0)
    rows = malformed = 0
    for fields in lines:
        if not fields:
            continue
        try:
            if len(fields) != len(columns):
                raise ValueError
            values = [float(field) for field in fields[1:]]
        except ValueError:
            malformed += 1
            continue
        rows += 1
        for name, value in zip(columns[1:], values):
            sums[name] += value
    return {"rows": rows, "malformed": malformed, "columns": columns, "sums": sums}


def _write(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@lru_cache(maxsize=4)
def _rows(count: int, seed: int) -> tuple[tuple[str, ...], ...]:
    rng = random.Random(seed)
    return tuple((rng.choice(LABELS), f"{rng.uniform(0, 500):.2f}", str(rng.randint(1, 20)),
                  f"{rng.uniform(0, 0.3):.3f}") for _ in range(count))


def clean_csv(count: int = 2000, seed: int = 1) -> str:
    """A well-formed CSV of `count` rows with quoted commas and non-ASCII labels."""
    return _write([HEADER, *_rows(count, seed)])


def malformed_csv(count: int = 2000, seed: int = 2) -> str:
    """A CSV where every seventh row is broken in one of five ways, with a few blank lines."""
    breakers = [lambda r: r[:-1], lambda r: [*r, "extra"], lambda r: [r[0], "n/a", *r[2:]],
                lambda r: [r[0], r[1], "", r[3]], lambda r: [r[0]]]
    rows = [list(r) if i % 7 else breakers[i // 7 % len(breakers)](list(r))
            for i, r in enumerate(_rows(count, seed))]
    return _write([HEADER, *rows[:count // 2], [], *rows[count // 2:], []])


def _differences(expected: dict, got) -> list[str]:
    if not isinstance(got, dict):
        return [f"it returned {type(got).__name__}, expected a dict with keys "
                f"{', '.join(expected)}"]
    missing = [key for key in expected if key not in got]
    if missing:
        return [f"the result has no key {', '.join(map(repr, missing))}"]
    found = [f"{key} is {got[key]!r}, expected {expected[key]!r}" for key in ("rows", "malformed")
             if got[key] != expected[key]]
    if list(got["columns"]) != expected["columns"]:
        found.append(f"columns is {got['columns']!r}, expected {expected['columns']!r}")
    sums = got["sums"]
    if not isinstance(sums, dict) or set(sums) != set(expected["sums"]):
        found.append(f"sums has keys {sorted(sums) if isinstance(sums, dict) else sums!r}, "
                     f"expected {sorted(expected['sums'])!r}")
    else:
        found += [f"sums[{name!r}] is {sums[name]!r}, expected {value!r}"
                  for name, value in expected["sums"].items()
                  if not (isinstance(sums[name], (int, float))
                          and math.isclose(sums[name], value, rel_tol=1e-9, abs_tol=1e-6))]
    return found[:3]


def _require_async(fn) -> None:
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
    _require_async(fn)

    async def chunks():
        for start in range(0, len(data), size):
            yield data[start:start + size]
        yield b""

    return _run(fn, fn(chunks()))


@dataclass
class _BigUpload:
    p99: float
    growth: int


def _mb(size: float) -> str:
    return f"{size / 2**20:.0f} MB" if abs(size) >= 2**20 else f"{size / 2**20:.1f} MB"


class _Lab:
    """The learner's function and the csvlab server running it, started on first use."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "your function")
        self._server: RunningServer | None = None
        self._folder: str | None = None
        self._failure: str | None = None
        self._big: _BigUpload | str | None = None

    def server(self) -> RunningServer:
        if self._failure is not None:
            raise CheckFailed(self._failure)
        if self._server is None:
            try:
                _require_async(self.fn)
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

    def big_upload(self) -> _BigUpload:
        """The 20 MB upload, measured once for both the latency and the memory check."""
        if self._big is None:
            try:
                self._big = self._measure_big()
            except CheckFailed as exc:
                self._big = str(exc)
        if isinstance(self._big, str):
            raise CheckFailed(self._big)
        return self._big

    def _measure_big(self) -> _BigUpload:
        try:
            self.upload(SAMPLE.encode())
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}; fix the checks above first") from None
        block = _write(_rows(10_000, 3)).encode()
        count = BIG_BYTES // len(block) + 1

        def body():
            yield _write([HEADER]).encode()
            for _ in range(count):
                yield block

        server = self.server()
        with RssSampler(server.pid, interval=0.01) as rss, \
                LatencyProbe(server.url + "/health", interval=0.02) as probe:
            result = self.upload(body(), timeout=BIG_TIMEOUT)
        rows = 10_000 * count
        if not isinstance(result, dict) or result.get("rows") != rows:
            got = result.get("rows") if isinstance(result, dict) else result
            raise CheckFailed(f"the {_mb(BIG_BYTES)} upload reported rows={got!r}, expected "
                              f"{rows}: fix the correctness checks first")
        return _BigUpload(probe.result.p99, rss.trace.growth)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _expect(expected: dict, got, where: str, advice: str) -> None:
    problems = _differences(expected, got)
    if problems:
        raise CheckFailed(f"{where}: {'; '.join(problems)}: {advice}")


def _clean(lab: _Lab) -> str:
    text = clean_csv()
    expected = reference(text)
    _expect(expected, lab.upload(text.encode()), "on a clean CSV",
            "the first line names the columns; every other column holds numbers to add up")
    return f"{expected['rows']} rows"


def _malformed(lab: _Lab) -> str:
    text = malformed_csv()
    expected = reference(text)
    _expect(expected, lab.upload(text.encode()), "on a CSV with broken rows",
            "a row with the wrong number of fields, or a value float() rejects, counts in "
            "`malformed` and nowhere else; blank lines count nowhere")
    return f"{expected['malformed']} malformed of {expected['rows'] + expected['malformed']} rows"


def _chunk_boundaries(lab: _Lab) -> str:
    data = clean_csv(300, seed=4).encode()
    expected = reference(data.decode())
    for size in CHUNK_SIZES:
        try:
            got = feed(lab.fn, data, size)
        except UnicodeDecodeError:
            raise CheckFailed(f"in {size}-byte chunks, decoding failed: a UTF-8 character split "
                              "between two chunks cannot be decoded alone; decode with "
                              "codecs.getincrementaldecoder('utf-8')()") from None
        except CheckFailed:
            raise
        except Exception as exc:
            raise CheckFailed(f"in {size}-byte chunks, {lab.name} raised "
                              f"{describe_error(exc, lab.fn)}") from None
        _expect(expected, got, f"in {size}-byte chunks",
                "a line split between two chunks must be joined: keep the unfinished end of each "
                "chunk and put it in front of the next")
    return "same result for " + ", ".join(map(str, CHUNK_SIZES)) + "-byte chunks"


def _latency(lab: _Lab) -> str:
    big = lab.big_upload()
    measured = f"/health took {big.p99 * 1000:.0f} ms (p99) during a {_mb(BIG_BYTES)} upload"
    if big.p99 > LATENCY_LIMIT:
        raise CheckFailed(f"{measured}, limit {LATENCY_LIMIT * 1000:.0f} ms: the loop waited for "
                          "your handler; handle each chunk as it arrives (`async for chunk in "
                          "chunks`) instead of collecting the body and parsing it at the end")
    return f"{measured} (limit {LATENCY_LIMIT * 1000:.0f} ms)"


def _memory(lab: _Lab) -> str:
    big = lab.big_upload()
    measured = f"the server's memory grew by {_mb(big.growth)} during a {_mb(BIG_BYTES)} upload"
    if big.growth > MEMORY_LIMIT:
        raise CheckFailed(f"{measured}, limit {_mb(MEMORY_LIMIT)}: you are holding the whole body; "
                          "process each line as it arrives and keep only the totals and the "
                          "unfinished last line")
    return f"{measured} (limit {_mb(MEMORY_LIMIT)})"


SUITE = [
    Check("clean CSV: rows, columns, sums", _clean),
    Check("malformed rows counted, not fatal", _malformed),
    Check("chunk boundaries (split lines and characters)", _chunk_boundaries),
    Check("the event loop stays responsive", _latency),
    Check("memory stays flat", _memory),
]


def check(fn, only: str | list[str] | None = None) -> Report:
    """Run lab 01's checks (or the ones named in `only`) on `fn` (your summarize_csv); stops the
    server and removes temp files."""
    return run_lab(f"Lab 01: {getattr(fn, '__name__', 'your function')}", SUITE,
                   lambda: _Lab(fn), only)


def try_it(fn, size: int = 7) -> None:
    """Feed SAMPLE to `fn` in `size`-byte chunks and print what it returned next to the answer."""
    expected = reference(SAMPLE)
    print(f"expected {expected}")
    try:
        got = feed(fn, SAMPLE.encode(), size)
    except CheckFailed as exc:
        print(f"FAIL: {exc}")
        return
    except Exception as exc:
        print(f"FAIL: {getattr(fn, '__name__', 'it')} raised {describe_error(exc, fn)}")
        return
    print(f"got      {got}")
    problems = _differences(expected, got)
    print("FAIL: " + "; ".join(problems) if problems else "same")
