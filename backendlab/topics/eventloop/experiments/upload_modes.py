"""Experiment 1: one CSV upload parsed on the event loop vs streamed; /health latency and server RSS."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from backendlab import datasets, plots, progressbar
from backendlab.measure import LatencyProbe, ProbeResult, RssSampler, RssTrace
from backendlab.topics.eventloop.experiments.common import MB, post_file, spool_server


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
        """{mode: (due times, latencies)}: the latency figure's lines."""
        return {mode: (run.probe.due, run.probe.latency) for mode, run in self.runs.items()}

    def memory_series(self) -> dict[str, tuple]:
        """{mode: (times, RSS)}: the memory figure's lines."""
        return {mode: (run.rss.times, run.rss.rss) for mode, run in self.runs.items()}

    def plot(self, view: str = "latency"):
        """/health latency ("latency") or server RSS growth ("memory") while the CSV went in."""
        size = f"{self.csv.size / MB:.0f} MB"
        if view == "latency":
            p99 = ", ".join(f"{mode} {run.p99 * 1000:.0f} ms" for mode, run in self.runs.items())
            return plots.latency_timeline(self.latency_series(),
                                          title=f"/health p99 during one {size} upload: {p99} (log scale)")
        if view == "memory":
            growth = ", ".join(f"{mode} +{run.growth / MB:.0f} MB" for mode, run in self.runs.items())
            return plots.memory_timeline(self.memory_series(),
                                         title=f"Server RSS during one {size} upload: {growth}",
                                         reference=(self.csv.size / 1e6, f"file size ({size})"))
        raise ValueError(f"view is 'latency' or 'memory', not {view!r}")

    def summary(self) -> dict[str, dict]:
        return {mode: {"status": run.status, "rows": run.body.get("rows"),
                       "malformed": run.body.get("malformed"),
                       "seconds": round(run.end - run.start, 2),
                       "p99_ms": round(run.p99 * 1000, 1),
                       "rss_growth_mb": round(run.growth / MB, 1)}
                for mode, run in self.runs.items()}


def _upload_run(mode: str, path: Path, idle: float) -> UploadRun:
    with spool_server() as (server, _):
        sampler, probe = RssSampler(server.pid), LatencyProbe(server.url + "/health")
        with sampler, probe:
            time.sleep(idle)
            start = time.perf_counter()
            response = post_file(f"{server.url}/upload/{mode}", path)
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
