"""Experiment 1: concurrent large uploads kept in memory, spooled, or streamed; server peak RSS."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backendlab import plots, progressbar
from backendlab.peak import PeakWindow, current_rss
from backendlab.topics.uploads.limits import MB
from backendlab.topics.uploads.experiments.common import post_big, upload_server

MODES = ("memory", "spooled", "stream")


@dataclass
class ModeRun:
    """One storage mode: the server's peak RSS above its fresh baseline after each step."""

    mode: str
    growth: dict[int, int] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)


@dataclass
class StorageComparison:
    """Each storage mode's run, and how many partial files the servers were left with."""

    file_bytes: int
    runs: dict[str, ModeRun]
    leftover_partial: int

    @property
    def concurrency(self) -> list[int]:
        return list(next(iter(self.runs.values())).growth)

    def growth_mb(self) -> dict[str, list[float]]:
        """{mode: [peak growth in MB per concurrency]}: the figure's lines."""
        return {mode: [run.growth[n] / MB for n in self.concurrency]
                for mode, run in self.runs.items()}

    def plot(self):
        """The server's peak RSS growth against uploads at once, one line per storage mode, and
        file size x uploads as the reference."""
        size = self.file_bytes / MB
        most = self.concurrency[-1]
        growth = {mode: values[-1] for mode, values in self.growth_mb().items()}
        first, *others = growth
        return plots.lines(self.concurrency, self.growth_mb(), xlabel="uploads at once",
                           ylabel="server peak RSS growth (MB)",
                           title=f"{most} x {size:g} MB uploads at once: {first} +{growth[first]:.0f} MB "
                                 "(every file whole),\n"
                                 + ", ".join(f"{mode} +{growth[mode]:.0f} MB" for mode in others),
                           reference=([n * size for n in self.concurrency], "file size x uploads"))

    def summary(self) -> dict:
        return {mode: {f"{n} at once": f"+{g / MB:.1f} MB" for n, g in run.growth.items()}
                for mode, run in self.runs.items()}


def storage_modes(file_mb: float = 8, concurrency: tuple[int, ...] = (1, 2, 4),
                  modes: tuple[str, ...] = MODES, *, seconds: float = 0.6,
                  progress: bool = True) -> StorageComparison:
    """For each mode, a fresh server takes `n` uploads of `file_mb` MB at once, for each `n` in
    `concurrency` (rising); each client takes `seconds` to send its file, like a user on a real
    network, so the uploads overlap. Growth is the server's peak RSS during each step (`PeakWindow`:
    no sampling can miss it) above its RSS after a small warm-up upload."""
    size = int(file_mb * MB)
    runs, leftover = {}, 0
    with progressbar.progress(len(modes) * len(concurrency), "uploads", progress) as bar:
        for mode in modes:
            run = runs[mode] = ModeRun(mode)
            with upload_server(mode=mode, max_file_bytes=size + MB, max_files=1) as (server, folder):
                post_big(server.url + "/upload", 100_000)
                baseline = current_rss(server.pid)
                for n in concurrency:
                    bar.set_postfix_str(f"{mode}, {n} at once")
                    with PeakWindow(server.pid) as window, ThreadPoolExecutor(n) as pool:
                        run.statuses += [r.status_code for r in pool.map(
                            lambda _: post_big(server.url + "/upload", size, seconds=seconds),
                            range(n))]
                    run.growth[n] = max(0, window.peak - baseline)
                    bar.update()
                leftover += sum(1 for p in folder.iterdir() if p.stat().st_size not in (size, 100_000))
    return StorageComparison(size, runs, leftover)
