"""Experiment 4: the same files into S3 through the server, or straight to S3 with a presigned
POST; what the server spends on each (bytes, CPU, memory)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from backendlab import plots
from backendlab.peak import PeakWindow
from backendlab.topics.uploads import forms
from backendlab.topics.uploads.limits import MB
from backendlab.topics.uploads.experiments.common import ALICE, direct_upload, post_big, stats, upload_server


@dataclass
class PathCost:
    """What the server spent on one way of uploading the files."""

    bytes_received: int
    cpu_seconds: float
    rss_growth: int
    seconds: float
    ok: int


@dataclass
class ProxyComparison:
    """The server's cost of each way of uploading the same files, and the metadata rows recorded."""

    files: int
    file_bytes: int
    costs: dict[str, PathCost]
    rows_recorded: int

    def values(self, what: str) -> dict[str, float]:
        scale = {"bytes_received": MB, "rss_growth": MB}.get(what, 1)
        return {way: getattr(cost, what) / scale for way, cost in self.costs.items()}

    def plot(self):
        """What the server paid per way of uploading: MB received, CPU seconds, peak RSS growth;
        the uploads' total size is the reference for MB received and RSS growth."""
        received = self.values("bytes_received")
        proxied, direct = (received[way] for way in self.costs)
        total = self.files * self.file_bytes / MB
        return plots.bar_panels({"MB received by the server": received,
                                 "server CPU seconds": self.values("cpu_seconds"),
                                 "server peak RSS growth (MB)": self.values("rss_growth")},
                                title=f"{self.files} uploads of {self.file_bytes / MB:g} MB: proxied, the "
                                      f"server receives {proxied:.0f} MB; direct to S3, {direct:.0f} MB",
                                references=dict.fromkeys(["MB received by the server",
                                                          "server peak RSS growth (MB)"],
                                                         (total, f"{self.files} x {self.file_bytes / MB:g} MB")))

    def summary(self) -> dict:
        return {way: {"server MB received": round(c.bytes_received / MB, 2),
                      "server CPU s": round(c.cpu_seconds, 2),
                      "server RSS growth MB": round(c.rss_growth / MB, 1),
                      "seconds": round(c.seconds, 2), "uploads ok": f"{c.ok}/{self.files}"}
                for way, c in self.costs.items()}


def _measure(server, work) -> PathCost:
    before = stats(server)
    with PeakWindow(server.pid) as window:
        start = time.perf_counter()
        ok = work()
        seconds = time.perf_counter() - start
    after = stats(server)
    return PathCost(after["bytes_received"] - before["bytes_received"],
                    after["cpu_seconds"] - before["cpu_seconds"], window.growth, seconds, ok)


def proxied_vs_direct(file_mb: float = 8, files: int = 3) -> ProxyComparison:
    """Upload `files` files of `file_mb` MB to S3 twice: streamed through the server (/proxy),
    and straight to S3 with presigned POSTs; measure the server around each."""
    size = int(file_mb * MB)
    data = forms.png(size)
    with upload_server(max_file_bytes=size + MB) as (server, _):
        httpx.post(server.url + "/presign", headers=ALICE,
                   json={"filename": "warm.png", "content_type": "image/png"})

        def proxied() -> int:
            with ThreadPoolExecutor(files) as pool:
                return sum(r.status_code == 201 for r in pool.map(
                    lambda _: post_big(server.url + "/proxy", size), range(files)))

        def direct() -> int:
            with ThreadPoolExecutor(files) as pool:
                return sum(r.status_code == 201 for r in pool.map(
                    lambda _: direct_upload(server.url, data), range(files)))

        costs = {"proxied through the server": _measure(server, proxied),
                 "direct to S3 (presigned POST)": _measure(server, direct)}
        rows = stats(server)["rows"]
    return ProxyComparison(files, size, costs, rows)
