"""The retry consumer: one poll loop over a source topic and its retry topics, no sleeping in it.

A copy in `orders.retry.2` must not be handled before its `x-retry-due-ms`. Sleeping until then in
the poll loop would stall every other partition and, past `max.poll.interval.ms`, get the consumer
thrown out of its group. Instead, when the head record of a retry partition is not yet due, the
loop seeks that partition back to the record and pauses it; the loop keeps polling (the source and
the other retry topics flow), and resumes the partition once the due time has passed. Records of a
retry topic are in due order only roughly (jitter), so a partition waits for its head: the later
retry topics, with longer delays, hold the slow ones.

    async with retry_consumer(bootstrap, topics) as consumer:
        loop = RetryLoop(consumer, topics, router.process)
        await loop.run(until=lambda: len(done) == 10, timeout=30)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError

from backendlab.topics.kafkaretry.headers import decode
from backendlab.topics.kafkaretry.router import now_ms
from backendlab.topics.kafkaretry.topics import RetryTopics

# Group joins on Tansu wait half the session timeout: these make them take about a second. Tansu
# answers a fetch only after fetch_max_wait_ms even when records arrive sooner: keep it short.
GROUP_TIMINGS = dict(session_timeout_ms=2000, heartbeat_interval_ms=500, fetch_max_wait_ms=20)
# What a commit, seek or pause raises once a rebalance has taken the partition away. Nothing is
# lost: the partition's new owner reads it again from the last commit (at-least-once).
COMMIT_LOST = (CommitFailedError, IllegalStateError, RebalanceInProgressError)


def due_ms(record) -> int | None:
    """The record's `x-retry-due-ms`, or None (an original, or malformed headers: handle now)."""
    try:
        meta = decode(record.headers)
    except ValueError:
        return None
    return None if meta is None else meta.due_ms


class _ForgetRevoked(ConsumerRebalanceListener):
    """A revoked partition loses its pause; the next owner starts from the committed offset."""

    def __init__(self, held: dict):
        self.held = held

    async def on_partitions_revoked(self, revoked):
        for tp in revoked:
            self.held.pop(tp, None)

    async def on_partitions_assigned(self, assigned):
        pass


async def until_assigned(consumer, poll_once, timeout: float = 15.0) -> None:
    """Call `poll_once` until the group has assigned `consumer` its partitions (about a second on
    Tansu), so that latency measured afterwards does not include the join."""
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the consumer was not assigned partitions within {timeout} s")
        await poll_once()


@contextlib.asynccontextmanager
async def retry_consumer(bootstrap: str, topics: RetryTopics, group: str | None = None, **options):
    """A started AIOKafkaConsumer for the source and retry topics: manual commits, from the start."""
    from aiokafka import AIOKafkaConsumer

    settings = dict(bootstrap_servers=bootstrap,
                    group_id=group or f"{topics.source}-{uuid.uuid4().hex[:6]}",
                    enable_auto_commit=False, auto_offset_reset="earliest", **GROUP_TIMINGS)
    settings.update(options)
    consumer = AIOKafkaConsumer(**settings)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


@dataclass
class RetryLoop:
    """Polls `consumer` and passes each due record to `process(record)` (the router's `process`,
    or a lab's). Retry partitions whose head is not due are paused until it is. When a rebalance
    takes a partition away mid-batch, the rest of its batch is dropped and the loop carries on."""

    consumer: object
    topics: RetryTopics
    process: Callable[[object], Awaitable[object]]
    clock: Callable[[], int] = now_ms
    poll_ms: int = 100
    held: dict = field(default_factory=dict)  # TopicPartition -> due time (ms)
    pauses: int = 0
    commits_lost: int = 0  # batches cut short because a rebalance took their partition away
    longest_poll_gap_ms: float = 0.0

    def __post_init__(self) -> None:
        self.consumer.subscribe([self.topics.source, *self.topics.retry_names],
                                listener=_ForgetRevoked(self.held))

    def _resume_due(self) -> None:
        now = self.clock()
        for tp, due in list(self.held.items()):
            if due <= now:
                self.consumer.resume(tp)
                del self.held[tp]

    def _wait_ms(self) -> int:
        if not self.held:
            return self.poll_ms
        return max(1, min(self.poll_ms, min(self.held.values()) - self.clock()))

    def _hold(self, tp: TopicPartition, record, due: int) -> None:
        self.consumer.seek(tp, record.offset)
        self.consumer.pause(tp)
        self.held[tp] = due
        self.pauses += 1

    async def poll_once(self) -> int:
        """One poll: resume what is due, handle every due record fetched; returns how many."""
        self._resume_due()
        batch = await self.consumer.getmany(timeout_ms=self._wait_ms())
        handled = 0
        for tp, records in batch.items():
            handled += await self._handle(tp, records)
        return handled

    async def _handle(self, tp: TopicPartition, records) -> int:
        """Pass `records` of `tp` to `process` in order until one is not due (hold it) or a
        rebalance took `tp` away (drop the rest: its new owner reads them from the last commit)."""
        handled = 0
        for record in records:
            if tp not in self.consumer.assignment():
                break
            due = due_ms(record) if record.topic != self.topics.source else None
            try:
                if due is not None and due > self.clock():
                    self._hold(tp, record, due)
                    break
                await self.process(record)
            except COMMIT_LOST:
                self.commits_lost += 1
                break
            handled += 1
        return handled

    async def join(self, timeout: float = 15.0) -> None:
        """Poll until the group has assigned this consumer its partitions."""
        await until_assigned(self.consumer, self.poll_once, timeout)

    async def run(self, until: Callable[[], bool], timeout: float) -> None:
        """Poll until `until()` is true; raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the retry loop did not finish within {timeout} s")
            await self.poll_once()
            now = time.monotonic()
            self.longest_poll_gap_ms = max(self.longest_poll_gap_ms, (now - last) * 1000)
            last = now
            await asyncio.sleep(0)
