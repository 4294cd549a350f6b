"""Measurements the experiments rest on: a latency probe, percentiles, RSS sampling, and Redis
round trips.

The probe is open-loop: it sends a request every `interval` seconds whether or not earlier ones have
answered, and times each from when it was due. A closed-loop probe (wait for the answer, then send
the next) sends one request during a two-second stall and reports a single slow sample, hiding the
stall ("coordinated omission").
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
import psutil
import redis


def percentiles(values, points=(50, 90, 99)) -> dict[int, float]:
    """The given percentiles of `values` (linear interpolation); NaN for an empty list."""
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return {p: float("nan") for p in points}
    return {p: float(np.percentile(data, p)) for p in points}


@dataclass
class ProbeResult:
    """Each probe request: when it was due (seconds from start), its latency, and its status."""

    due: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        return percentiles(self.latency, (p,))[p]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def max(self) -> float:
        return max(self.latency, default=float("nan"))

    @property
    def errors(self) -> int:
        """Requests that failed or answered with a non-2xx status (0 means no answer)."""
        return sum(1 for s in self.status if not 200 <= s < 300)


class LatencyProbe:
    """Hits `url` every `interval` seconds from a background thread until stopped.

    Use as a context manager around whatever should disturb the server; `result` holds the samples.
    At most `max_in_flight` requests are outstanding; later ones wait (and count their wait).
    """

    def __init__(self, url: str, interval: float = 0.02, timeout: float = 30.0,
                 max_in_flight: int = 500):
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.result = ProbeResult()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.started = 0.0

    def start(self) -> "LatencyProbe":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True,
                                        name="latency-probe")
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self) -> ProbeResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
        order = np.argsort(self.result.due)
        self.result = ProbeResult(*([values[i] for i in order] for values in (
            self.result.due, self.result.latency, self.result.status)))
        return self.result

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight,
                              max_keepalive_connections=self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            await self._warm_up(client)
            gate = asyncio.Semaphore(self.max_in_flight)
            tasks = []
            start = self.started = time.perf_counter()
            self._started.set()
            tick = 0
            while not self._stop.is_set():
                due = start + tick * self.interval
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._one(client, gate, due, start)))
                tick += 1
            await asyncio.gather(*tasks)

    async def _warm_up(self, client: httpx.AsyncClient) -> None:
        """One untimed request first: the client's first use imports and connects lazily."""
        try:
            await client.get(self.url)
        except httpx.HTTPError:
            pass

    async def _one(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, due: float,
                   start: float) -> None:
        async with gate:
            try:
                status = (await client.get(self.url)).status_code
            except httpx.HTTPError:
                status = 0
        self.result.due.append(due - start)
        self.result.latency.append(time.perf_counter() - due)
        self.result.status.append(status)

    def __enter__(self) -> "LatencyProbe":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def process_rss(pid: int, include_children: bool = True) -> int:
    """Resident memory of a process (and its children) in bytes; 0 once it has gone."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        if include_children:
            for child in proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
        return total
    except psutil.Error:
        return 0


@dataclass
class RssTrace:
    """RSS samples of one process over time (seconds from start, bytes)."""

    times: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    @property
    def baseline(self) -> int:
        return self.rss[0] if self.rss else 0

    @property
    def peak(self) -> int:
        return max(self.rss, default=0)

    @property
    def growth(self) -> int:
        """Peak RSS above the first sample (what the workload added)."""
        return self.peak - self.baseline


class RssSampler:
    """Samples a process's RSS every `interval` seconds from a background thread."""

    def __init__(self, pid: int, interval: float = 0.02, include_children: bool = True):
        self.pid = pid
        self.interval = interval
        self.include_children = include_children
        self.trace = RssTrace()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def start(self) -> "RssSampler":
        self.started = time.perf_counter()
        self._sample(self.started)
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def _sample(self, start: float) -> None:
        self.trace.times.append(time.perf_counter() - start)
        self.trace.rss.append(process_rss(self.pid, self.include_children))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(self.started)

    def stop(self) -> RssTrace:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.trace

    def __enter__(self) -> "RssSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_SPIN = """import sys, time
cpu, end = time.process_time(), time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    pass
print(time.process_time() - cpu)
"""


def free_cores(n: int = 2, seconds: float = 0.3) -> float:
    """Cores' worth of CPU that `n` busy processes get right now (at most `n`).

    On a shared machine this is the ceiling of any parallel speed-up measured at this moment.
    """
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN, str(seconds)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(n)]
    return sum(float(p.communicate()[0]) for p in spinners) / seconds


class RedisRoundTrips:
    """A redis-py client (`.client`) whose round trips are counted in `.count`: every command
    packet its connections send, so a pipeline or a script call counts once."""

    def __init__(self, url: str):
        counter = self

        class CountingConnection(redis.Connection):
            def send_packed_command(self, command, check_health=True):
                counter.count += 1
                return super().send_packed_command(command, check_health)

        self.count = 0
        self.client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(
            url, connection_class=CountingConnection))

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()
