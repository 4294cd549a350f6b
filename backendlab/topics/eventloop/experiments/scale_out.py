"""Experiment 4: the same CPU-bound requests against 1 and 2 uvicorn worker processes."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from backendlab import datasets, plots, progressbar
from backendlab.measure import free_cores, percentiles
from backendlab.servers import start_server, worker_pids
from backendlab.topics.eventloop.experiments.common import CSV_HEADERS


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

    def plot(self):
        """Requests per second for each worker count, one bar each, and the ideal for the most
        workers: the fewest workers' rate times the ratio of their counts."""
        fewer, more = min(self.runs), max(self.runs)
        ideal = more / fewer
        return plots.bars(self.throughputs(), ylabel="requests per second",
                          title=f"CPU-bound uploads on 2 cores: {more} uvicorn workers give "
                                f"{self.gain(more, fewer):.1f}x (ideal {ideal:g}x)",
                          fmt="{:.0f}", reference=(ideal * self.runs[fewer].throughput,
                                                   f"ideal: {ideal:g}x {fewer} worker"))

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
