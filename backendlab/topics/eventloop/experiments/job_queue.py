"""Experiment 3b: many users at once, each answered 202 with a job id to poll while a queue works."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from backendlab import datasets, progressbar
from backendlab.measure import LatencyProbe, ProbeResult
from backendlab.topics.eventloop.experiments.common import CSV_HEADERS, MB, spool_server


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
    with spool_server(queue_size=max(16, users)) as (server, spool), \
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
