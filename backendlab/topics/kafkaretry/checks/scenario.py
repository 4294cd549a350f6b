"""The scenario: healthy, fatal, always-failing and twice-failing events sent through the learner's
`process` in fresh topics, and what it left (`Observed`) for the checks to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field

import redis
from aiokafka import TopicPartition

from backendlab.topics.kafkaretry.checks.harness import (DELAY_MS, MAX_ATTEMPTS, Lab,
                                                         times_delivered)
from backendlab.topics.kafkaretry.checks.learner import Calls
from backendlab.topics.kafkaretry.consumer import RetryLoop, retry_consumer
from backendlab.topics.kafkaretry.producer import producer as started_producer
from backendlab.topics.kafkaretry.reading import read_topic
from backendlab.topics.kafkaretry.topics import RetryTopics, run_topics

HEALTHY, HEALTHY_EVERY_S = 30, 0.08  # sent while the failing event retries
RUN_LIMIT_S = 12.0  # the scenario's whole run; it needs about 3 s


@dataclass
class Message:
    """One record the scenario sends to the source topic, and what became of it."""

    label: str
    event_id: str | None
    value: bytes
    key: bytes
    kind: str  # healthy, flaky (fails twice), poison (always fails) or fatal
    headers: list = field(default_factory=list)
    offset: int = -1
    sent_ms: float = 0.0


def make_message(label, kind, event, key: str, trace: str) -> Message:
    """A message of `kind` carrying `event` (JSON, or raw bytes), its key and a trace-id header."""
    value = event if isinstance(event, bytes) else json.dumps(event).encode()
    event_id = event.get("id") if isinstance(event, dict) else None
    return Message(label, event_id, value, key.encode(), kind, [("trace-id", trace.encode())])


def scenario_messages() -> list[Message]:
    """The failing and fatal events first, then healthy ones (sent while the others retry)."""
    upfront = [
        make_message("the always-failing event", "poison",
                     {"id": "always-fails", "type": "email", "always_fail": True}, "user-1", "t-1"),
        make_message("the event that fails twice", "flaky",
                     {"id": "fails-twice", "type": "websocket", "fail_times": 2}, "user-2", "t-2"),
        make_message("the unknown-type event", "fatal", {"id": "fax-1", "type": "fax"}, "user-3",
                     "t-3"),
        make_message("the non-JSON message", "fatal", b"{not json", "user-4", "t-4"),
        make_message("the event without an id", "fatal", {"type": "email"}, "user-5", "t-5"),
    ]
    healthy = [make_message(f"healthy event h-{n}", "healthy",
                            {"id": f"h-{n}", "type": "email", "to": f"user{n}@example.com"},
                            f"user-h{n}", f"t-h{n}") for n in range(HEALTHY)]
    return upfront + healthy


@dataclass
class Observed:
    """What one scenario run left: deliveries, copies, commits, and what escaped `process`."""

    topics: RetryTopics
    messages: list[Message]
    attempts: dict[str, list[dict]]
    copies: dict[str, list]  # topic -> its records
    commits: dict[str, tuple[int, int]]  # topic -> (committed offset, end offset)
    escapes: list[tuple[object, str]]
    started_ms: int
    ended_ms: int

    def of(self, kind: str) -> list[Message]:
        return [message for message in self.messages if message.kind == kind]

    def copies_of(self, message: Message, topic: str) -> list:
        return [record for record in self.copies[topic] if record.value == message.value]

    def delivered(self, message: Message) -> int:
        return times_delivered(self.attempts, message.event_id)


async def produce(bootstrap: str, topic: str, messages: list[Message], every_s: float,
                  stop: threading.Event | None = None) -> None:
    """Send `messages` in order (healthy ones `every_s` apart), noting each one's offset and send
    time; stop early once `stop` is set."""
    async with started_producer(bootstrap) as producer:
        for message in messages:
            if message.kind == "healthy":
                await asyncio.sleep(every_s)
            if stop is not None and stop.is_set():
                return
            message.sent_ms = time.time() * 1000
            sent = await producer.send_and_wait(topic, message.value, key=message.key,
                                                headers=message.headers)
            message.offset = sent.offset


@contextlib.asynccontextmanager
async def producing(bootstrap: str, topic: str, messages: list[Message]):
    """Send `messages` to `topic` while the body runs, in a thread of its own so that a `process`
    that blocks cannot delay the sends; however the body ends, stop the sends and wait for them,
    so none goes to a topic being deleted."""
    stop = threading.Event()
    production = asyncio.ensure_future(asyncio.to_thread(
        asyncio.run, produce(bootstrap, topic, messages, HEALTHY_EVERY_S, stop)))
    try:
        yield production
    finally:
        stop.set()
        await production


def _finished(calls: Calls, production, messages: list[Message], source) -> bool:
    """Whether the run is over: everything expected happened (and 0.2 s passed quietly), the
    stub said it is not written, or nothing ran for longer than any backoff."""
    if calls.unwritten:
        return True
    if not production.done():
        return False
    quiet = time.monotonic() - calls.last
    if quiet > (calls.lab.delay_ms(MAX_ATTEMPTS - 1) + 2000) / 1000:
        return True
    if quiet <= 0.2 or calls.lab.committed.get(source, 0) < len(messages):
        return False  # before reading the attempts log: this runs after every poll
    attempts = calls.lab.attempts()

    def outcomes(message):
        return [a["outcome"] for a in attempts.get(message.event_id, [])]

    return (all("delivered" in outcomes(m) for m in messages if m.kind in ("healthy", "flaky"))
            and all(len(outcomes(m)) >= MAX_ATTEMPTS for m in messages if m.kind == "poison"))


async def run_scenario(fn, bootstrap: str, client: redis.Redis, prefix: str,
                        messages: list[Message], delay_ms: int = DELAY_MS):
    """Run `messages` through `fn` in fresh topics; returns (Observed, unwritten exception)."""
    started = Lab.now_ms()
    async with run_topics(bootstrap, "lab07", retries=MAX_ATTEMPTS - 1) as topics:
        async with started_producer(bootstrap) as producer, \
                retry_consumer(bootstrap, topics) as consumer:
            lab = Lab(topics, consumer, producer, client, prefix, delay_ms)
            calls = Calls(fn, lab)
            loop = RetryLoop(consumer, topics, calls)
            await loop.join()
            source = TopicPartition(topics.source, 0)
            async with producing(bootstrap, topics.source, messages) as production:
                with contextlib.suppress(TimeoutError):
                    await loop.run(until=lambda: _finished(calls, production, messages, source),
                                   timeout=RUN_LIMIT_S)
            commits = await _commits(consumer, topics)
        ended = Lab.now_ms()
        names = topics.all()[1:]  # the retry topics and the DLT
        records = await asyncio.gather(*(read_topic(bootstrap, name) for name in names))
    observed = Observed(topics, messages, lab.attempts(), dict(zip(names, records)), commits,
                        calls.escapes, started, ended)
    return observed, calls.unwritten


async def _commits(consumer, topics: RetryTopics) -> dict[str, tuple[int, int]]:
    """(committed, end) offsets of partition 0 of the source and retry topics."""
    partitions = [TopicPartition(name, 0) for name in topics.all()[:-1]]
    ends = await consumer.end_offsets(partitions)
    return {tp.topic: (await consumer.committed(tp) or 0, ends[tp]) for tp in partitions}
