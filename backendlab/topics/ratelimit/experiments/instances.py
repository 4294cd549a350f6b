"""Experiment 2: one API as several uvicorn workers behind one port, limited in memory vs in Redis,
under load from locust (a headless subprocess whose CSV stats are read back)."""

from __future__ import annotations

import contextlib
import csv
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backendlab import processes
from backendlab import progressbar
from backendlab.topics.ratelimit.experiments.common import admitted_steps, run_prefix, start_all
from backendlab.servers import worker_pids

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STORES = ("memory", "redis")


@dataclass
class LoadRun:
    """Totals per store from locust's CSV, and its per-second history of admitted requests."""

    limit: int
    instances: int
    admitted: dict[str, int]
    refused: dict[str, int]
    other_errors: dict[str, int]
    history: dict[str, tuple]
    workers_seen: dict[str, int]

    def ratio(self, store: str) -> float:
        return self.admitted[store] / self.limit

    def summary(self) -> dict:
        return {store: {"admitted": self.admitted[store], "refused_429": self.refused[store],
                        "other_errors": self.other_errors[store],
                        "admitted/limit": round(self.ratio(store), 2),
                        "workers_that_answered": self.workers_seen[store]}
                for store in self.admitted} | {"limit": self.limit, "instances": self.instances}

    def plot(self):
        """Admissions per second of the run, summed, per store, against the limit."""
        return admitted_steps(self.history, limit=self.limit, xlabel="seconds of the locust run",
                               title=f"Admitted by {self.instances} workers, as a multiple of the limit: "
                                     + ", ".join(f"{store} {self.ratio(store):.1f}x" for store in self.admitted))


def _read_csv(path: Path, output: str) -> list[dict]:
    if not path.is_file():
        raise RuntimeError(f"locust wrote no {path.name}; its output:\n{output[-2000:]}")
    with path.open(newline="") as source:
        return list(csv.DictReader(source))


def run_locust(env: dict, users: int, seconds: float, folder: Path, show: bool) -> str:
    """Run locust headless as a subprocess with `users` users, expected to finish in about
    `seconds` (stopped at `seconds` + 10 s whatever happens); its printed output.

    It writes `run_stats.csv`, `run_failures.csv` and `run_stats_history.csv` into `folder`.
    """
    limit = math.ceil(seconds) + 10
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(users), "-r", str(users), "-t", f"{limit}s", "--csv", str(folder / "run"),
            "--csv-full-history", "--only-summary", "--stop-timeout", "1", "--loglevel", "ERROR"]
    proc = processes.start("locust", argv, env=env)
    try:
        with progressbar.progress(math.ceil(seconds), "locust seconds", show) as bar:
            started = time.monotonic()
            while proc.alive() and time.monotonic() - started < limit + 20:
                time.sleep(0.25)
                bar.n = min(bar.total, int(time.monotonic() - started))
                bar.refresh()
            bar.n = bar.total
        return proc.output(20000)
    finally:
        proc.stop()


def _history(rows: list[dict], store: str) -> tuple[list[int], list[int]]:
    """(seconds since locust started, admitted so far) from its per-second history."""
    t0 = int(rows[0]["Timestamp"]) if rows else 0
    times, admitted = [0], [0]
    for row in rows:
        if row["Name"] == store:
            times.append(int(row["Timestamp"]) - t0)
            admitted.append(int(row["Total Request Count"]) - int(row["Total Failure Count"]))
    return times, admitted


def across_instances(instances: int = 3, points: int = 40, duration: float = 60, users: int = 8,
                     rate: float = 16, max_requests: int = 48, *, progress: bool = True) -> LoadRun:
    """Two servers of `instances` workers each, one limiting in memory and one in Redis, at
    `points` per `duration` s per client IP. Locust runs `users` users, half per server, each
    sending `rate` requests/s until it has sent `max_requests`. Locust quits once every user is
    done and its CSV written."""
    if users < 2 or users % 2:
        raise ValueError(f"users must be even (half per server), got {users}")
    seconds = max_requests / rate + 2  # sending, then locust's start and its last CSV turn
    with contextlib.ExitStack() as stack, run_prefix() as prefix:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="backendlab-locust-")))
        common = dict(workers=instances, points=points, duration=duration, key="ip")
        started = start_all(stack, {"memory": dict(store="memory", **common),
                                    "redis": dict(store="redis", prefix=prefix, **common)})
        seen = {store: len(worker_pids(server.url + "/health", instances))
                for store, server in started.items()}
        env = {"BACKENDLAB_MEMORY_URL": started["memory"].url,
               "BACKENDLAB_REDIS_URL": started["redis"].url,
               "BACKENDLAB_LOCUST_RATE": str(rate), "BACKENDLAB_LOCUST_USERS": str(users),
               "BACKENDLAB_LOCUST_MAX_REQUESTS": str(max_requests)}
        output = run_locust(env, users, seconds, folder, progress)
        stats = {row["Name"]: row for row in _read_csv(folder / "run_stats.csv", output)}
        failures = _read_csv(folder / "run_failures.csv", output)
        history = _read_csv(folder / "run_stats_history.csv", output)
    admitted, refused, other, series = {}, {}, {}, {}
    for store in STORES:
        total = int(stats[store]["Request Count"]) if store in stats else 0
        if total != users // 2 * max_requests:
            raise RuntimeError(f"locust recorded {total} {store} requests of "
                               f"{users // 2 * max_requests} (machine too busy?); its output:\n"
                               f"{output[-2000:]}")
        failed = int(stats[store]["Failure Count"])
        refused[store] = sum(int(f["Occurrences"]) for f in failures
                             if f["Name"] == store and "'429'" in f["Error"])
        other[store] = failed - refused[store]
        admitted[store] = total - failed
        series[store] = _history(history, store)
    return LoadRun(points, instances, admitted, refused, other, series, seen)
