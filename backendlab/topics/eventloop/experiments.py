"""Experiments of notebook 01: what a CSV upload does to an asyncio server, and the fixes.

1. `upload_modes`: one upload parsed on the event loop vs streamed; /health latency and server RSS.
2. `offload`: several parses in `asyncio.to_thread` vs a process pool; latency and throughput.
3. `concurrency_limit` and `job_queue`: many users at once, refused with 503 + Retry-After, or
   accepted with 202 and a job id to poll.
4. `scale_out`: the same CPU-bound requests against 1 and 2 uvicorn worker processes.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from backendlab import datasets
from backendlab import progressbar
from backendlab.measure import (LatencyProbe, ProbeResult, RssSampler, RssTrace, free_cores,
                                percentiles)
from backendlab.servers import start_server, worker_pids

MB = datasets.MB
CSV_HEADERS = {"content-type": "text/csv"}


def _post_file(url: str, path: Path, timeout: float = 300) -> httpx.Response:
    with path.open("rb") as body:
        return httpx.post(url, content=body, headers=CSV_HEADERS, timeout=timeout)


@contextlib.contextmanager
def _server(**options):
    """An eventloop server spooling into a fresh temp folder; yields (server, folder)."""
    with tempfile.TemporaryDirectory(prefix="backendlab-spool-") as folder:
        with start_server("eventloop", spool_dir=folder, **options) as server:
            yield server, Path(folder)


# 1. One upload: buffered vs streamed -------------------------------------------------------------

@dataclass
class UploadRun:
    """One upload to a fresh server, with /health probed and the server's RSS sampled around it.

    Times are seconds on the probe's clock; `start`/`end` bracket the upload request.
    """

    mode: str
    probe: ProbeResult
    rss: RssTrace
    start: float
    end: float
    status: int
    body: dict

    @property
    def p99(self) -> float:
        return self.probe.p99

    @property
    def growth(self) -> int:
        return self.rss.growth


@dataclass
class UploadComparison:
    """The same CSV uploaded once per mode."""

    csv: datasets.CsvInfo
    runs: dict[str, UploadRun]

    def p99_ratio(self, slow: str = "buffered", fast: str = "streamed") -> float:
        return self.runs[slow].p99 / self.runs[fast].p99

    def memory_ratio(self, big: str = "buffered", small: str = "streamed",
                     floor: int = MB) -> float:
        """Ratio of peak RSS growth; the smaller growth counts as at least `floor` bytes."""
        return self.runs[big].growth / max(self.runs[small].growth, floor)

    def latency_series(self) -> dict[str, tuple]:
        """{mode: (due times, latencies)} for `plots.latency_timeline`."""
        return {mode: (run.probe.due, run.probe.latency) for mode, run in self.runs.items()}

    def memory_series(self) -> dict[str, tuple]:
        """{mode: (times, RSS)} for `plots.memory_timeline`."""
        return {mode: (run.rss.times, run.rss.rss) for mode, run in self.runs.items()}

    def summary(self) -> dict[str, dict]:
        return {mode: {"status": run.status, "rows": run.body.get("rows"),
                       "malformed": run.body.get("malformed"),
                       "seconds": round(run.end - run.start, 2),
                       "p99_ms": round(run.p99 * 1000, 1),
                       "rss_growth_mb": round(run.growth / MB, 1)}
                for mode, run in self.runs.items()}


def _upload_run(mode: str, path: Path, idle: float) -> UploadRun:
    with _server() as (server, _):
        sampler, probe = RssSampler(server.pid), LatencyProbe(server.url + "/health")
        with sampler, probe:
            time.sleep(idle)
            start = time.perf_counter()
            response = _post_file(f"{server.url}/upload/{mode}", path)
            end = time.perf_counter()
            time.sleep(idle)
    shift = sampler.started - probe.started
    rss = RssTrace([t + shift for t in sampler.trace.times], sampler.trace.rss)
    return UploadRun(mode, probe.result, rss, start - probe.started, end - probe.started,
                     response.status_code, response.json())


def upload_modes(csv_mb: float = 20, modes: tuple[str, ...] = ("buffered", "streamed"), *,
                 malformed_every: int = 1000, idle: float = 0.3,
                 progress: bool = True) -> UploadComparison:
    """Upload one generated CSV of `csv_mb` MB to a fresh server per mode, probing /health."""
    with datasets.csv_file(int(csv_mb * MB), malformed_every=malformed_every) as csv_file, \
            progressbar.progress(len(modes), "uploads", progress) as bar:
        runs = {}
        for mode in modes:
            bar.set_postfix_str(mode)
            runs[mode] = _upload_run(mode, csv_file.path, idle)
            bar.update()
        info = datasets.CsvInfo(csv_file.size, csv_file.rows, csv_file.malformed)
    return UploadComparison(info, runs)


# 2. Offloading: to_thread vs process pool --------------------------------------------------------

@dataclass
class OffloadRun:
    """Batches of `parses` concurrent uploads of `file_mb` MB each, parsed by one offloading mode."""

    mode: str
    parses: int
    file_mb: float
    probes: list[ProbeResult] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def latency(self) -> list[float]:
        return [v for probe in self.probes for v in probe.latency]

    @property
    def p90(self) -> float:
        """The latency nine probes in ten beat: a long stall moves it, one unlucky sample cannot."""
        return percentiles(self.latency, (90,))[90]

    @property
    def throughput(self) -> float:
        """MB of CSV parsed per second of wall time, over all batches."""
        return len(self.seconds) * self.parses * self.file_mb / sum(self.seconds)


@dataclass
class OffloadComparison:
    """Both modes, plus the least CPU this machine had free before a round (the speed-up ceiling)."""

    runs: dict[str, OffloadRun]
    leftover_files: int
    free_cores: float

    def p90_ratio(self, slow: str = "thread", fast: str = "process") -> float:
        return self.runs[slow].p90 / self.runs[fast].p90

    def throughput_ratio(self, fast: str = "process", slow: str = "thread") -> float:
        return self.runs[fast].throughput / self.runs[slow].throughput

    def latency_series(self) -> dict[str, tuple]:
        """{mode: (due times, latencies)} of each mode's first batch."""
        return {mode: (run.probes[0].due, run.probes[0].latency) for mode, run in self.runs.items()}

    def throughputs(self) -> dict[str, float]:
        return {mode: run.throughput for mode, run in self.runs.items()}

    def summary(self) -> dict[str, dict]:
        return {**{mode: {"ok": run.statuses.count(200), "batches": len(run.seconds),
                          "MB/s": round(run.throughput, 1), "p90_ms": round(run.p90 * 1000, 1)}
                   for mode, run in self.runs.items()},
                "free_cores": round(self.free_cores, 2), "leftover_files": self.leftover_files}


def _batch(url: str, path: Path, run: OffloadRun, idle: float) -> None:
    """One batch: probe /health while `run.parses` uploads go in at once; time the batch."""
    with LatencyProbe(url + "/health") as probe, ThreadPoolExecutor(run.parses) as clients:
        time.sleep(idle)
        start = time.perf_counter()
        responses = list(clients.map(lambda _: _post_file(f"{url}/upload/{run.mode}", path),
                                     range(run.parses)))
        run.seconds.append(time.perf_counter() - start)
        time.sleep(idle)
    run.probes.append(probe.result)
    run.statuses += [r.status_code for r in responses]


def offload(csv_mb: float = 20, parses: int = 4, modes: tuple[str, ...] = ("thread", "process"),
            *, rounds: int = 3, idle: float = 0.2, progress: bool = True) -> OffloadComparison:
    """Send `parses` uploads at once (together `csv_mb` MB), alternating modes for `rounds` rounds.

    Alternating on one server makes any load from other programs hit both modes alike; one
    warm-up upload per mode first, so no batch pays for first-use costs.
    """
    with datasets.csv_file(int(csv_mb / parses * MB)) as csv_file, \
            _server(pool_workers=2) as (server, spool), \
            progressbar.progress(rounds * len(modes), "offload batches", progress) as bar:
        runs = {mode: OffloadRun(mode, parses, csv_file.size / MB) for mode in modes}
        for mode in modes:
            _post_file(f"{server.url}/upload/{mode}", csv_file.path)
        cores = []
        for _ in range(rounds):
            cores.append(free_cores())
            for mode in modes:
                bar.set_postfix_str(mode)
                _batch(server.url, csv_file.path, runs[mode], idle)
                bar.update()
        leftover = len(list(spool.iterdir()))
    return OffloadComparison(runs, leftover, min(cores))


# 3. Many users at once: a concurrency limit, and a job queue -------------------------------------

@dataclass
class Attempt:
    """One request of one user: when it started and ended (s from the start), and its answer."""

    user: int
    start: float
    end: float
    status: int
    retry_after: str | None = None
    body: dict = field(default_factory=dict)


@dataclass
class LimitResult:
    """Users uploading at once to a server that processes at most `limit` uploads at a time."""

    users: int
    limit: int
    attempts: list[Attempt]
    max_in_flight: int
    leftover_files: int

    @property
    def refused(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 503]

    @property
    def succeeded_users(self) -> int:
        return len({a.user for a in self.attempts if a.status == 200})

    @property
    def seconds(self) -> float:
        return max(a.end for a in self.attempts)

    def timeline(self) -> list[tuple]:
        """(user, start, end, outcome) per attempt, for `plots.request_timeline`."""
        names = {200: "200 OK", 503: "503 + Retry-After"}
        return [(a.user, a.start, a.end, names.get(a.status, str(a.status))) for a in self.attempts]

    def summary(self) -> dict:
        return {"users": self.users, "limit": self.limit, "attempts": len(self.attempts),
                "refused_503": len(self.refused), "users_done": self.succeeded_users,
                "server_max_in_flight": self.max_in_flight, "seconds": round(self.seconds, 2),
                "leftover_files": self.leftover_files}


def _user_with_retries(url: str, data: bytes, user: int, t0: float, gate: threading.Barrier,
                       rng: random.Random, max_attempts: int) -> list[Attempt]:
    """Upload until accepted, waiting Retry-After (plus jitter, so retries do not arrive together)."""
    attempts = []
    gate.wait()
    with httpx.Client(timeout=60) as client:
        for _ in range(max_attempts):
            start = time.perf_counter() - t0
            response = client.post(url, content=data, headers=CSV_HEADERS)
            retry_after = response.headers.get("retry-after")
            attempts.append(Attempt(user, start, time.perf_counter() - t0, response.status_code,
                                    retry_after, response.json()))
            if response.status_code != 503:
                break
            time.sleep(float(retry_after or 1) + rng.uniform(0, 0.5))
    return attempts


def concurrency_limit(users: int = 12, limit: int = 3, file_mb: float = 4, *,
                      max_attempts: int = 10, seed: int = 0,
                      progress: bool = True) -> LimitResult:
    """All users upload at once (streamed parse) to a server with --max-concurrent `limit`."""
    data, _ = datasets.generate(int(file_mb * MB))
    with _server(max_concurrent=limit, retry_after=1) as (server, spool), \
            progressbar.progress(users, "users done", progress) as bar:
        gate = threading.Barrier(users)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(users) as pool:
            futures = [pool.submit(_user_with_retries, f"{server.url}/upload/streamed", data, user,
                                   t0, gate, random.Random(seed + user), max_attempts)
                       for user in range(users)]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            attempts = [a for f in futures for a in f.result()]
        stats = httpx.get(server.url + "/stats").json()
        leftover = len(list(spool.iterdir()))
    return LimitResult(users, limit, attempts, stats["max_in_flight"], leftover)


@dataclass
class Job:
    """One user's job: upload answered (202) at `accepted`, seen finished by polling at `done`."""

    user: int
    submitted: float
    accepted: float
    done: float
    status_code: int
    job: dict
    polls: int


@dataclass
class QueueResult:
    """Users submitting a parse job at once; the server answers 202 and works through a queue."""

    jobs: list[Job]
    probe: ProbeResult
    leftover_files: int

    @property
    def accept_seconds(self) -> list[float]:
        return [j.accepted - j.submitted for j in self.jobs]

    @property
    def finish_seconds(self) -> list[float]:
        return [j.done - j.submitted for j in self.jobs]

    def timeline(self) -> list[tuple]:
        """(user, start, end, phase) per job: the upload until its 202, then the wait until done."""
        rows = []
        for j in self.jobs:
            rows.append((j.user, j.submitted, j.accepted, "202 accepted"))
            rows.append((j.user, j.accepted, j.done, "queued, then parsed (client polls)"))
        return rows

    def summary(self) -> dict:
        return {"jobs": len(self.jobs),
                "answered_202": sum(j.status_code == 202 for j in self.jobs),
                "done": sum(j.job.get("status") == "done" for j in self.jobs),
                "slowest_202_ms": round(max(self.accept_seconds) * 1000, 1),
                "slowest_job_s": round(max(self.finish_seconds), 2),
                "health_p99_ms": round(self.probe.p99 * 1000, 1),
                "leftover_files": self.leftover_files}


def _submit_and_poll(base: str, data: bytes, user: int, t0: float, gate: threading.Barrier,
                     poll: float, timeout: float) -> Job:
    gate.wait()
    with httpx.Client(base_url=base, timeout=60) as client:
        submitted = time.perf_counter() - t0
        response = client.post("/jobs", content=data, headers=CSV_HEADERS)
        accepted = time.perf_counter() - t0
        job, polls = response.json(), 0
        if response.status_code == 202:
            deadline = time.perf_counter() + timeout
            while job.get("status") in ("queued", "running") and time.perf_counter() < deadline:
                time.sleep(poll)
                job = client.get(response.headers["location"]).json()
                polls += 1
    return Job(user, submitted, accepted, time.perf_counter() - t0, response.status_code, job, polls)


def job_queue(users: int = 10, file_mb: float = 4, *, poll: float = 0.05, timeout: float = 60,
              idle: float = 0.3, progress: bool = True) -> QueueResult:
    """All users submit a job at once and poll its status URL until it is done; /health is probed
    throughout (job times are on the probe's clock)."""
    data, _ = datasets.generate(int(file_mb * MB))
    with _server(queue_size=max(16, users)) as (server, spool), \
            progressbar.progress(users, "jobs done", progress) as bar:
        gate = threading.Barrier(users)
        with LatencyProbe(server.url + "/health") as probe, ThreadPoolExecutor(users) as pool:
            time.sleep(idle)
            futures = [pool.submit(_submit_and_poll, server.url, data, user, probe.started, gate,
                                   poll, timeout) for user in range(users)]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            jobs = [f.result() for f in futures]
            time.sleep(idle)
        leftover = len(list(spool.iterdir()))
    return QueueResult(jobs, probe.result, leftover)


# 4. Scaling out: uvicorn worker processes --------------------------------------------------------

@dataclass
class ScaleRun:
    """Closed-loop clients posting CPU-bound uploads to one server, over one or more slices."""

    workers: int
    completed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    errors: int = 0

    @property
    def throughput(self) -> float:
        """Requests completed per second."""
        return self.completed / self.seconds

    @property
    def p50(self) -> float:
        return percentiles(self.latencies, (50,))[50]


@dataclass
class ScaleResult:
    """Each worker count, plus the least CPU this machine had free before a slice (the ceiling)."""

    runs: dict[int, ScaleRun]
    free_cores: float

    def gain(self, more: int = 2, fewer: int = 1) -> float:
        return self.runs[more].throughput / self.runs[fewer].throughput

    def throughputs(self) -> dict[str, float]:
        return {f"{w} worker{'s' if w > 1 else ''}": r.throughput for w, r in self.runs.items()}

    def summary(self) -> dict[int, dict]:
        return {**{f"{w} worker(s)": {"requests/s": round(r.throughput, 1),
                                      "p50_ms": round(r.p50 * 1000, 1),
                                      "worker_pids_seen": len(r.pids), "errors": r.errors}
                   for w, r in self.runs.items()},
                "free_cores": round(self.free_cores, 2)}


def _hammer(url: str, data: bytes, stop_at: float, run: ScaleRun, lock: threading.Lock) -> None:
    """One closed-loop client; a new connection per request, so any free worker can accept it."""
    with httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            response = client.post(url, content=data, headers=CSV_HEADERS)
            with lock:
                if response.status_code == 200:
                    run.completed += 1
                    run.latencies.append(time.perf_counter() - start)
                    run.pids.add(response.json()["pid"])
                else:
                    run.errors += 1


def _slice(url: str, data: bytes, seconds: float, clients: int, run: ScaleRun) -> None:
    lock = threading.Lock()
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(_hammer, f"{url}/upload/buffered", data, start + seconds, run, lock)
    run.seconds += time.perf_counter() - start


def scale_out(workers: tuple[int, ...] = (1, 2), *, seconds: float = 3.0, slices: int = 3,
              clients: int = 4, request_kb: int = 1000, progress: bool = True) -> ScaleResult:
    """Closed-loop clients post a CSV parsed on the loop (CPU-bound) to servers with 1 and 2
    uvicorn workers, `seconds` each, alternating in `slices` so outside load hits both alike."""
    data, _ = datasets.generate(request_kb * 1000)
    runs = {count: ScaleRun(count) for count in workers}
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(progressbar.progress(len(workers) * (slices + 1), "workers", progress))
        urls = {}
        for count in workers:
            bar.set_postfix_str(f"starting {count} worker(s)")
            server = stack.enter_context(start_server("eventloop", workers=count, pool_workers=1))
            worker_pids(server.url + "/health", count)
            urls[count] = server.url
            bar.update()
        cores = []
        for _ in range(slices):
            cores.append(free_cores(max(workers)))
            for count in workers:
                bar.set_postfix_str(f"{count} worker(s)")
                _slice(urls[count], data, seconds / slices, clients, runs[count])
                bar.update()
    return ScaleResult(runs, min(cores))


# 5. Bad input ------------------------------------------------------------------------------------

@dataclass
class BadInputCase:
    """One hostile or broken upload and what the server answered."""

    case: str
    status: int
    answer: str


@dataclass
class BadInputResult:
    """Every bad input's answer, the malformed rows the good-but-messy CSV held, and what stayed
    spooled after a client hung up (files still open, files left on disk)."""

    cases: list[BadInputCase]
    leftover_files: int
    malformed_sent: int
    spooled_after_hang_up: int

    @property
    def malformed_counted(self) -> int:
        """How many malformed rows the server reported for the messy CSV."""
        return json.loads(self.cases[0].answer)["malformed"]

    def status(self, case: str) -> int:
        return next(c.status for c in self.cases if c.case == case)

    def table(self) -> list[tuple[str, int, str]]:
        return [(c.case, c.status, c.answer) for c in self.cases]


def _hang_up_mid_upload(url: str, path: str, declared: int, sent: bytes) -> None:
    """Promise `declared` bytes, send only `sent`, then close the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/csv\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode() + sent)
        time.sleep(0.2)


def bad_inputs(max_mb: float = 1) -> BadInputResult:
    """Send the server a CSV with bad rows, a non-CSV, an oversized and an undecodable body, and an
    upload abandoned halfway; count the spooled files left afterwards."""
    limit = int(max_mb * MB)
    good, info = datasets.generate(limit // 2, malformed_every=20)
    sends = [
        ("CSV with malformed rows", good, CSV_HEADERS),
        ("JSON sent to a CSV endpoint", b'{"rows": []}', {"content-type": "application/json"}),
        (f"body over the {max_mb:g} MB limit", good * 3, CSV_HEADERS),
        ("not UTF-8 (a binary file)", bytes(range(256)) * 100, CSV_HEADERS),
    ]
    cases = []
    with _server(max_bytes=limit) as (server, spool):
        for case, body, headers in sends:
            response = httpx.post(server.url + "/upload/process", content=body, headers=headers,
                                  timeout=30)
            cases.append(BadInputCase(case, response.status_code, response.text))
        _hang_up_mid_upload(server.url, "/upload/process", limit, good[:limit // 4])
        time.sleep(0.3)
        stats = httpx.get(server.url + "/stats").json()
        cases.append(BadInputCase("client hung up mid-upload", 0,
                                  f"spooled files still open: {stats['spooled']}"))
        leftover = len(list(spool.iterdir()))
    return BadInputResult(cases, leftover, info.malformed, stats["spooled"])
