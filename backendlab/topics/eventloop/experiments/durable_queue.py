"""Experiment 3c: the same parse jobs in the server's memory and in Redis (RQ), each queue's
process SIGKILLed mid-run; which jobs still finish, which end failed, which are lost."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from rq import Queue, Retry
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from backendlab import datasets, plots, processes
from backendlab.servers import start_server
from backendlab.services.redis import redis_client, redis_url
from backendlab.topics.eventloop.durable_jobs import parse_job
from backendlab.topics.eventloop.experiments.common import CSV_HEADERS, MB

RETRY = {"max": 2, "interval": 1}  # three attempts in all, a second apart (RQ's scheduler)
JOB_TIMEOUT = 30  # seconds a job may run before RQ stops it
# A dead worker's started job is reclaimed once its heartbeat lapses: SimpleWorker's heartbeat is
# the job's timeout plus 60 s. The experiment runs RQ's cleanup with the clock that far on, rather
# than wait a minute and a half.
HEARTBEAT_LAPSE = JOB_TIMEOUT + 60 + 1
# The job each queue's process is killed in parses a file this many times bigger, so it runs long
# enough (about half a second idle, longer on a busy core) for the kill to land inside it, not
# between two jobs or after the last, however fast or loaded the machine is.
LONG_JOB_SCALE = 8
OUTCOMES = {"finished": plots.PALETTE[4], "failed": plots.PALETTE[2], "lost": plots.PALETTE[0]}
LEGEND = {"failed": "failed (kept in the failed registry)"}


@dataclass
class QueueRun:
    """One queue's jobs after its worker was killed mid-run: how each ended, what the kill caught."""

    label: str
    key: str
    jobs: int
    finished: int
    failed: int
    lost: int
    finished_before_kill: int
    in_flight_at_kill: int


@dataclass
class DurableQueueResult:
    """The in-memory queue and the RQ queue, each killed mid-run, with the RQ run's details."""

    memory: QueueRun
    durable: QueueRun
    flaky: list[str]
    attempts: dict[str, int]
    failed_reasons: dict[str, str]
    leftover_keys: int
    leftover_files: int

    def summary(self) -> dict:
        return {**{f"{run.key}_{name}": getattr(run, name)
                   for run in (self.memory, self.durable)
                   for name in ("jobs", "finished", "failed", "lost", "finished_before_kill",
                                "in_flight_at_kill")},
                "rq_attempts": sum(self.attempts.values()),
                "leftover_keys": self.leftover_keys, "leftover_files": self.leftover_files}

    def plot(self):
        """A stacked bar per queue: finished, failed and lost jobs after the kill."""
        fig, (ax,) = plots.figure(width=8, height=3.2)
        runs = [self.durable, self.memory]
        names = [f"{run.label}\n(killed after {run.finished_before_kill} done)" for run in runs]
        left = [0] * len(runs)
        for outcome, color in OUTCOMES.items():
            counts = [getattr(run, outcome) for run in runs]
            bars = ax.barh(names, counts, left=left, color=color, label=LEGEND.get(outcome, outcome))
            ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], label_type="center")
            left = [a + b for a, b in zip(left, counts)]
        ax.axvline(self.durable.jobs, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"{self.durable.jobs} jobs submitted", (self.durable.jobs, 1.45), ha="right",
                    fontsize=9, annotation_clip=False)
        ax.set_xlabel("jobs")
        ax.set_xlim(0, self.durable.jobs * 1.02)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
        return plots.finish(fig, f"Worker killed mid-run: Redis (RQ) lost {self.durable.lost} "
                                 f"jobs, the in-memory queue {self.memory.lost}")


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.005)


def _kill(proc: processes.ManagedProcess) -> None:
    """SIGKILL a process's whole group at once, as a crash or the OOM killer would."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(timeout=10)
    proc.stop()


def _rq_worker(queue: str, name: str) -> processes.ManagedProcess:
    """`rq worker` for `queue`; SimpleWorker runs each job in the worker itself (no fork per job,
    so the job's imports are paid once)."""
    argv = [sys.executable, "-m", "rq.cli", "worker", "--url", redis_url(), "--name", name,
            "--worker-class", "rq.worker.SimpleWorker", queue]
    return processes.start(f"rq-{name}", argv)


def _memory_run(files: list[Path], kill_after: int, timeout: float) -> QueueRun:
    """POST a job per file to the eventloop server, SIGKILL it while job `kill_after` (the long
    one) runs, restart it and ask it for every job."""
    jobs, bodies = len(files), [path.read_bytes() for path in files]
    folder = files[0].parent / "spool"
    folder.mkdir()
    server = start_server("eventloop", spool_dir=folder, pool_workers=1, queue_size=jobs)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        ids = [client.post("/jobs", content=body, headers=CSV_HEADERS).json()["job_id"]
               for body in bodies]
        status = {}

        def long_job_runs() -> bool:
            status.update({i: client.get(f"/jobs/{i}").json()["status"] for i in ids})
            return status[ids[kill_after]] == "running"
        _wait(long_job_runs, timeout, f"in-memory job {kill_after} (the long one) to run")
        running = sum(s == "running" for s in status.values())
        _kill(server.process)
    with start_server("eventloop", spool_dir=folder) as again, \
            httpx.Client(base_url=again.url, timeout=30) as client:
        known = sum(client.get(f"/jobs/{i}").status_code == 200 for i in ids)
    finished = sum(s == "done" for s in status.values())
    failed = sum(s == "failed" for s in status.values())
    return QueueRun("in memory", "memory", jobs, finished, failed, jobs - finished - failed - known,
                    finished + failed, running)


RQ_SHARED_SETS = ("rq:queues", "rq:workers", "rq:schedulers")  # RQ's registries of every queue


def _members(client, queue: str) -> dict[str, list[str]]:
    """This run's members of RQ's shared sets (its queue, worker and scheduler names)."""
    return {key: [m for m in client.smembers(key) if queue in m] for key in RQ_SHARED_SETS}


def _rq_keys(client, queue: str) -> list[str]:
    """Every key this run made (each name carries the queue name) and its shared-set members."""
    own = list(client.scan_iter(match=f"rq:*{queue}*", count=500))
    return own + [f"{key} {m}" for key, members in _members(client, queue).items() for m in members]


def _delete_rq_keys(client, queue: str) -> None:
    """Delete this run's keys and set members, leaving other queues on a shared Redis alone."""
    for key, members in _members(client, queue).items():
        if members:
            client.srem(key, *members)
    own = list(client.scan_iter(match=f"rq:*{queue}*", count=500))
    if own:
        client.delete(*own)


def _durable_run(files: list[Path], flaky: set[int], kill_after: int, queue_name: str,
                 timeout: float):
    """Enqueue a job per file on RQ, SIGKILL the worker once job `kill_after` (the long one) has
    started, reclaim it, start a second worker; returns the run, attempts per job and the failed
    jobs' reasons."""
    jobs = len(files)
    client = redis_client(decode_responses=False)
    queue = Queue(queue_name, connection=client)
    started = StartedJobRegistry(queue=queue)
    finished = FinishedJobRegistry(queue=queue)
    failed = FailedJobRegistry(queue=queue)
    ids = [f"{queue_name}-{i}" for i in range(jobs)]
    for i, (job_id, path) in enumerate(zip(ids, files)):
        queue.enqueue(parse_job, str(path), i in flaky, job_id=job_id, retry=Retry(**RETRY),
                      job_timeout=JOB_TIMEOUT)
    scheduler = processes.start("rq-scheduler", [sys.executable, "-m",
                                "backendlab.topics.eventloop.durable_jobs", redis_url(), queue_name])
    try:
        first = _rq_worker(queue_name, f"{queue_name}-w1")
        try:
            _wait(lambda: ids[kill_after] in started.get_job_ids(), timeout,
                  f"RQ job {kill_after} (the long one) to start")
        finally:
            _kill(first)
        before, in_flight = finished.count + failed.count, started.count
        started.cleanup(timestamp=time.time() + HEARTBEAT_LAPSE)
        with _rq_worker(queue_name, f"{queue_name}-w2"):
            _wait(lambda: finished.count + failed.count == jobs, timeout,
                  "every RQ job to finish or fail")
            _wait(lambda: started.count == 0, timeout, "the last job to leave the started registry")
    finally:
        scheduler.stop()
    jobs_now = {job_id: queue.fetch_job(job_id) for job_id in ids}
    attempts = {job_id: job.meta.get("attempts", 0) for job_id, job in jobs_now.items()}
    reasons = {job_id: job.latest_result().exc_string.strip().splitlines()[-1]
               for job_id, job in jobs_now.items() if job.is_failed}
    run = QueueRun("Redis (RQ)", "rq", jobs, finished.count, failed.count,
                   jobs - finished.count - failed.count, before, in_flight)
    return run, attempts, reasons


def durable_queue(jobs: int = 12, file_mb: float = 1, *, flaky_every: int = 4,
                  kill_after: int = 4, timeout: float = 60) -> DurableQueueResult:
    """The same jobs (one poison CSV, every `flaky_every`-th failing its first attempt) through the
    in-memory queue and RQ, the server and the RQ worker each SIGKILLed while it runs job
    `kill_after` (on a longer file), so `kill_after` jobs are done at the kill."""
    flaky = set(range(1, jobs, flaky_every)) - {kill_after}  # the long job runs when killed
    poison = jobs - 1
    queue_name = "blrq" + uuid.uuid4().hex[:10]
    client = redis_client()
    folder = Path(tempfile.mkdtemp(prefix="backendlab-jobs-"))
    keeper = processes.remove_when_gone(folder)  # removes the folder even if the kernel is killed
    try:
        csv, long_csv = folder / "orders.csv", folder / "orders-long.csv"
        poison_file = folder / "poison.csv"
        csv.write_bytes(datasets.generate(int(file_mb * MB))[0])
        long_csv.write_bytes(datasets.generate(int(file_mb * MB * LONG_JOB_SCALE))[0])
        poison_file.write_bytes(b"\xff\xfe not utf-8\n")
        try:
            # The same file for every job, but the long one at `kill_after` and the poison last.
            files = [poison_file if i == poison else long_csv if i == kill_after else csv
                     for i in range(jobs)]
            memory = _memory_run(files, kill_after, timeout)
            durable, attempts, reasons = _durable_run(files, flaky, kill_after, queue_name,
                                                      timeout)
        finally:
            _delete_rq_keys(client, queue_name)
        leftover_keys = len(_rq_keys(client, queue_name))
    finally:
        keeper.stop()
        client.close()
    leftover_files = len(list(folder.rglob("*"))) if folder.exists() else 0
    return DurableQueueResult(memory, durable, [f"{queue_name}-{i}" for i in sorted(flaky)],
                              attempts, reasons, leftover_keys, leftover_files)
