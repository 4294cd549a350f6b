"""Experiment 5: commit after processing, get killed at the worst moment: no message is lost, some
are processed twice, and an idempotent handler makes the second time harmless.

A real consumer process (`worker`) reads the topic in a group and commits after each batch; its
side effect per message is an "email sent" (the id appended to a Redis list). It is SIGKILLed just
after the side effect of record `kill_after`, before its batch is committed. Restarted in the same
group, it resumes from the last commit, so the records of that batch handled before the kill are
delivered again: the naive worker sends their emails twice, the idempotent one (a dedupe mark set
in the same Lua script as the send) sends each once. A third worker shows that "publish to the
retry topic, then commit" is at-least-once too: its side effect is a copy in the retry topic, and
the killed batch is copied twice. The modes run side by side, on one topic, in groups of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import redis

from backendlab import plots, processes
from backendlab.topics.kafkaretry.experiments import worker
from backendlab.topics.kafkaretry.experiments.common import bootstrap, producer, run, run_topics
from backendlab.topics.kafkaretry import read_topic
from backendlab.services.redis import delete_keys, keys_under, redis_url

KEY_PREFIX = "backendlab:07"


@dataclass
class ModeRun:
    """One worker mode: the ids produced, its side effects in order (the Redis list of emails
    sent, or the ids of the copies in the retry topic), and what the killed worker and its
    restart each logged."""

    mode: str
    produced: list[str]
    effects: list[str]
    killed: worker.WorkerLog
    restarted: worker.WorkerLog
    kill_returncode: int

    @property
    def lost(self) -> list[str]:
        """Produced ids without a side effect."""
        return sorted(set(self.produced) - set(self.effects))

    @property
    def duplicates(self) -> int:
        """Extra side effects: those beyond the first of each id."""
        return len(self.effects) - len(set(self.effects))

    @property
    def duplicated(self) -> list[str]:
        """Ids with more than one side effect."""
        return sorted(i for i, n in Counter(self.effects).items() if n > 1)

    @property
    def committed_at_kill(self) -> int:
        """The group's committed offset when the worker was killed: where its restart began."""
        return self.killed.committed[-1] if self.killed.committed else 0

    @property
    def redelivered(self) -> list[str]:
        """Ids delivered to the killed worker and again to its restart."""
        return sorted(set(self.killed.delivered) & set(self.restarted.delivered))

    def summary(self) -> dict:
        return {"produced": len(self.produced), "side effects": len(self.effects),
                "duplicates": self.duplicates, "lost": len(self.lost),
                "redelivered": len(self.redelivered),
                "committed at the kill": self.committed_at_kill,
                "exit code of the killed worker": self.kill_returncode}


@dataclass
class AtLeastOnceRun:
    messages: int
    batch: int
    kill_after: int
    naive: ModeRun
    idempotent: ModeRun
    retry_topic: ModeRun
    seconds: float
    keys_left: int

    @property
    def killed_batch(self) -> list[str]:
        """Ids of the killed batch's records handled before the kill: what a restart gets again
        (batches start at multiples of `batch`, as the first worker starts at offset 0)."""
        first = self.kill_after - self.kill_after % self.batch
        return [order_id(n) for n in range(first, self.kill_after + 1)]

    def summary(self) -> dict:
        return {"messages": self.messages, "batch": self.batch, "killed after offset":
                self.kill_after, "naive": self.naive.summary(),
                "idempotent": self.idempotent.summary(),
                "retry topic": self.retry_topic.summary(), "seconds": round(self.seconds, 1),
                "redis keys left": self.keys_left}

    def plot(self):
        """Left: produced, side effects, duplicates, lost per mode. Right: the order each side
        effect was for, in sequence; the naive and retry-topic lines step back after the kill."""
        fig, (counts, timeline) = plots.figure(ncols=2, width=11, height=3.8)
        modes = [self.naive, self.idempotent, self.retry_topic]
        labels = ["produced", "side effects", "duplicates", "lost"]
        width = 0.8 / len(modes)
        for n, mode in enumerate(modes):
            values = [len(mode.produced), len(mode.effects), mode.duplicates, len(mode.lost)]
            x = [i + (n - (len(modes) - 1) / 2) * width for i in range(len(labels))]
            rects = counts.bar(x, values, width, label=mode.mode, color=plots.PALETTE[n])
            for rect, value in zip(rects, values):
                counts.annotate(str(value), (rect.get_x() + rect.get_width() / 2, value),
                                ha="center", va="bottom", fontsize=8)
        counts.set_xticks(range(len(labels)), labels)
        counts.set_ylabel("messages")
        counts.legend()
        for n, (mode, style) in enumerate(zip(modes, ("o-", ".-", "--"))):
            orders = [order_number(i) for i in mode.effects]
            timeline.plot(range(1, len(orders) + 1), orders, style, markersize=3, lw=1,
                          color=plots.PALETTE[n], label=mode.mode)
        kill_at = len(self.naive.killed.effects) + 0.5
        timeline.axvline(kill_at, color="black", linestyle=":", lw=1)
        timeline.annotate(f"SIGKILL after order {self.kill_after}\n(batch not committed)",
                          (kill_at, 0), xytext=(4, 0), textcoords="offset points", fontsize=8)
        committed = self.naive.committed_at_kill
        timeline.axhline(committed, color="black", linestyle="--", lw=0.8)
        timeline.annotate(f"last commit ({committed}):\nthe restart begins here", (1, committed),
                          xytext=(0, 3), textcoords="offset points", fontsize=8, va="bottom")
        timeline.set_xlabel("side effect (email sent, or copy published), in order")
        timeline.set_ylabel("order number")
        timeline.legend(loc="upper left")
        return plots.finish(fig, "Commit after processing, killed before the commit: "
                                 "no loss, duplicates unless idempotent")


def order_id(n: int) -> str:
    return f"order-{n:03d}"


def order_number(message_id: str) -> int:
    return int(message_id.removeprefix("order-"))


async def produce(address: str, topic: str, messages: int) -> list[str]:
    """One order per record, keyed by its id; returns the ids the broker acknowledged."""
    ids = [order_id(n) for n in range(messages)]
    async with producer(address, acks="all") as sender:
        for n, message_id in enumerate(ids):
            body = json.dumps({"order": n, "email": f"buyer{n}@example.com"}).encode()
            await sender.send_and_wait(topic, body, key=message_id.encode())
    return ids


def start_worker(mode: str, topics, address: str, url: str, prefix: str, batch: int,
                 timeout: float, kill_after: int | None = None) -> processes.ManagedProcess:
    """The worker process for `mode`, in the group `<source>-<mode>`."""
    argv = ["--bootstrap", address, "--topic", topics.source, "--group", f"{topics.source}-{mode}",
            "--mode", mode, "--batch", str(batch), "--timeout", str(timeout)]
    if mode == "retry-topic":
        argv += ["--retry-topic", topics.retry(1)]
    else:
        argv += ["--redis", url, "--prefix", f"{prefix}:{mode}"]
    if kill_after is not None:
        argv += ["--kill-after", str(kill_after)]
    # Run as a file (-P: its folder stays off sys.path), not `-m`: `-m` first imports this
    # package's __init__, every experiment with matplotlib, about 2 s per start instead of 0.6 s.
    return processes.start(f"kafka-worker-{mode}", [sys.executable, "-P", worker.__file__, *argv])


def output(proc: processes.ManagedProcess) -> str:
    return proc.output(limit=1 << 20)


async def wait_for_kill_point(proc: processes.ManagedProcess, deadline: float) -> None:
    while worker.KILL_POINT not in output(proc):
        if not proc.alive():
            raise processes.ProcessFailed(f"{proc.name} exited with code {proc.popen.returncode} "
                                          f"before its kill point:\n{output(proc)[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name} did not reach its kill point:\n{output(proc)[-3000:]}")
        await asyncio.sleep(0.02)


async def wait_for_exit(proc: processes.ManagedProcess, deadline: float) -> None:
    while proc.alive():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name} did not finish the topic:\n{output(proc)[-3000:]}")
        await asyncio.sleep(0.05)
    if proc.popen.returncode != 0:
        raise processes.ProcessFailed(f"{proc.name} exited with code {proc.popen.returncode}:\n"
                                      f"{output(proc)[-3000:]}")


def kill(proc: processes.ManagedProcess) -> int:
    """SIGKILL, no goodbye: no commit, no LeaveGroup. Returns the exit code (-9)."""
    proc.popen.send_signal(signal.SIGKILL)
    return proc.popen.wait(timeout=10)


async def scenario(address: str, url: str, prefix: str, client, messages: int, batch: int,
                   kill_after: int, timeout: float) -> dict[str, ModeRun]:
    deadline = time.monotonic() + timeout
    started: list[processes.ManagedProcess] = []
    async with run_topics(address, retries=1) as topics:
        try:
            ids = await produce(address, topics.source, messages)
            common = dict(topics=topics, address=address, url=url, prefix=prefix,
                          batch=batch, timeout=timeout)
            first = {mode: start_worker(mode, kill_after=kill_after, **common)
                     for mode in worker.MODES}
            started += first.values()
            await asyncio.gather(*(wait_for_kill_point(p, deadline) for p in first.values()))
            codes = {mode: kill(proc) for mode, proc in first.items()}
            second = {mode: start_worker(mode, **common) for mode in worker.MODES}
            started += second.values()
            await asyncio.gather(*(wait_for_exit(p, deadline) for p in second.values()))
            effects = {mode: client.lrange(worker.sent_key(f"{prefix}:{mode}"), 0, -1)
                       for mode in ("naive", "idempotent")}
            effects["retry-topic"] = [record.key.decode() for record in
                                      await read_topic(address, topics.retry(1))]
            return {mode: ModeRun(mode, ids, effects[mode], worker.read_log(output(first[mode])),
                                  worker.read_log(output(second[mode])), codes[mode])
                    for mode in worker.MODES}
        finally:  # the workers first: they consume the topics deleted on leaving the block
            for proc in started:
                proc.stop()


def at_least_once(messages: int = 40, batch: int = 10, kill_after: int = 25,
                  timeout: float = 30.0) -> AtLeastOnceRun:
    """Produce `messages` orders; per mode, a worker committing every `batch` records is SIGKILLed
    after the side effect of order `kill_after`, then restarted to finish the topic."""
    if not 0 <= kill_after < messages or batch < 1:
        raise ValueError(f"need 0 <= kill_after < messages and batch >= 1 "
                         f"(got kill_after={kill_after}, messages={messages}, batch={batch})")
    address, url = bootstrap(), redis_url()
    prefix = f"{KEY_PREFIX}:{uuid.uuid4().hex[:10]}"
    began = time.perf_counter()
    with contextlib.closing(redis.Redis.from_url(url, decode_responses=True,
                                                 socket_connect_timeout=3,
                                                 socket_timeout=5)) as client:
        try:
            modes = run(scenario(address, url, prefix, client, messages, batch, kill_after,
                                 timeout), timeout=timeout + 10)
        finally:
            delete_keys(client, prefix)
        left = len(keys_under(client, prefix))
    return AtLeastOnceRun(messages, batch, kill_after, modes["naive"], modes["idempotent"],
                          modes["retry-topic"], time.perf_counter() - began, left)
