"""Experiment 2: several parses in `asyncio.to_thread` vs a process pool; /health latency and throughput."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from backendlab import datasets, plots, progressbar
from backendlab.measure import LatencyProbe, ProbeResult, free_cores, percentiles
from backendlab.topics.eventloop.experiments.common import MB, post_file, spool_server


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

    def plot(self):
        """Each mode's /health latency during its first batch, beside its parse throughput."""
        return plots.latency_with_bars(
            self.latency_series(), self.throughputs(), ylabel="MB of CSV parsed per second",
            title=f"A process pool keeps /health {self.p90_ratio():.0f}x faster (p90) than to_thread "
                  f"and parses {self.throughput_ratio():.1f}x the MB/s")

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
        responses = list(clients.map(lambda _: post_file(f"{url}/upload/{run.mode}", path),
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
            spool_server(pool_workers=2) as (server, spool), \
            progressbar.progress(rounds * len(modes), "offload batches", progress) as bar:
        runs = {mode: OffloadRun(mode, parses, csv_file.size / MB) for mode in modes}
        for mode in modes:
            post_file(f"{server.url}/upload/{mode}", csv_file.path)
        cores = []
        for _ in range(rounds):
            cores.append(free_cores())
            for mode in modes:
                bar.set_postfix_str(mode)
                _batch(server.url, csv_file.path, runs[mode], idle)
                bar.update()
        leftover = len(list(spool.iterdir()))
    return OffloadComparison(runs, leftover, min(cores))
