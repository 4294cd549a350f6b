"""Failure, measured: Redis stops mid-run; the API answers from the database, logs it, and
recovers when Redis returns. The Redis stopped is this experiment's own, never the shared one."""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field

import httpx

from backendlab import plots, processes
from backendlab.topics.caching.experiments.leftovers import track_process
from backendlab.topics.caching.experiments.shop import HOT_PAGES, Shop, stats, timed_get


def own_redis(port: int, engine: str | None = None) -> processes.ManagedProcess:
    """A Redis on `port` that only this experiment uses: `engine` "redis-server" or "fakeredis"
    (default: redis-server if installed)."""
    engine = engine or ("redis-server" if shutil.which("redis-server") else "fakeredis")
    if engine == "redis-server":
        argv = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]
    else:
        argv = [sys.executable, "-m", "backendlab.services.fakeredis_server", "--port", str(port)]
    proc = processes.start("redis-05-outage", argv, port=port)
    track_process(proc)
    return proc.wait_for_port()


@dataclass
class Outage:
    """Each request's time (s from start), latency, X-Cache and status around a Redis outage."""

    down_at: float
    up_at: float
    times: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    how: list[str] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    log: str = ""
    stats: dict = field(default_factory=dict)

    def served(self, start: float, end: float) -> list[str]:
        """X-Cache of the requests sent between `start` and `end`."""
        return [h for t, h in zip(self.times, self.how) if start <= t < end]

    def median_latency(self, how: str) -> float:
        """The median latency (s) of the requests served `how` (hit, miss or bypass)."""
        return statistics.median(t for t, h in zip(self.latency, self.how) if h == how)

    def log_lines(self, word: str = "cache") -> list[str]:
        """The server's log lines that mention `word`."""
        return [line for line in self.log.splitlines() if word in line]

    def summary(self) -> dict:
        phases = {"before": (0, self.down_at), "during": (self.down_at, self.up_at),
                  "after": (self.up_at, float("inf"))}
        return {name: {how: self.served(*span).count(how) for how in ("hit", "miss", "bypass")}
                for name, span in phases.items()} | {"non-200": sum(s != 200 for s in self.status)}

    def plot(self):
        """Each request's latency over time, coloured by how it was served, the outage shaded."""
        fig, (ax,) = plots.figure()
        for n, how in enumerate(dict.fromkeys(self.how)):
            points = [(t, v * 1000) for t, v, h in zip(self.times, self.latency, self.how) if h == how]
            ax.plot([t for t, _ in points], [v for _, v in points], ".", markersize=4,
                    color=plots.PALETTE[n % len(plots.PALETTE)], label=how)
        ax.axvspan(self.down_at, self.up_at, color=plots.PALETTE[5], alpha=0.2, label="cache down")
        ax.set_xlabel("time since start (s)")
        ax.set_ylabel("latency (ms)")
        ax.set_yscale("log")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        errors = sum(s != 200 for s in self.status)
        during = self.served(self.down_at, self.up_at)
        return plots.finish(fig, f"Redis down {self.up_at - self.down_at:.1f} s: {len(during)} requests "
                                 f"answered from the database, {errors} errors (latency, log scale)")


def redis_outage(seconds: float = 2.4, down_at: float = 0.6, up_at: float = 1.4,
                 query_delay: float = 0.03) -> Outage:
    """Read the hot pages in a loop; stop this experiment's Redis at `down_at`, start it again on
    the same port at `up_at`, and record how each request was served."""
    port = processes.free_port()
    result = Outage(down_at, up_at)
    redis_proc = own_redis(port)
    try:
        with Shop() as shop, shop.serve(redis_url=f"redis://127.0.0.1:{port}/0",
                                        query_delay=query_delay, redis_retry=0.25) as server, \
                httpx.Client(base_url=server.url, timeout=10) as client:
            start, phase = time.perf_counter(), "up"
            while (now := time.perf_counter() - start) < seconds:
                if phase == "up" and now >= down_at:
                    redis_proc.stop()
                    phase = "down"
                elif phase == "down" and now >= up_at:
                    redis_proc = own_redis(port)
                    phase = "back"
                category, page = HOT_PAGES[len(result.times) % len(HOT_PAGES)]
                latency, response = timed_get(client, f"/products?category={category}&page={page}")
                result.times.append(now)
                result.latency.append(latency)
                result.how.append(response.headers.get("x-cache", ""))
                result.status.append(response.status_code)
            result.stats = stats(server)
            result.log = server.process.output()
    finally:
        redis_proc.stop()
    return result
