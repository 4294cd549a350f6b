"""What the learner's `process(record, lab)` is given: the `Lab` (topics, retry policy, producer,
commits, the downstream `deliver`, Redis) and the log of every `deliver` call the checks judge.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from dataclasses import dataclass

import redis
from aiokafka import TopicPartition

from backendlab.topics.kafkaretry.backoff import exponential_ms
from backendlab.topics.kafkaretry.checks.crashing_producer import CrashingProducer
from backendlab.topics.kafkaretry.topics import RetryTopics

MAX_ATTEMPTS = 3
DELAY_MS = 800  # the backoff before retry 1 in the checks; it doubles for each retry after
KNOWN_TYPES = ("email", "websocket")


def backoff_ms(attempt: int, delay_ms: int = DELAY_MS) -> int:
    """The backoff before retry `attempt` (1-based): `delay_ms`, doubled for each retry after."""
    return exponential_ms(attempt, delay_ms, cap_ms=60_000)


@dataclass(frozen=True)
class Crash:
    """Where a crash-check run dies: the `call`-th time it reaches `at`. "send" is just before a
    copy is sent; "sent" is as soon as the broker acknowledged a copy, before `process` goes on (to
    its commit); "commit" is just before a record of the source topic is committed."""

    at: str
    call: int


class Lab:
    """What `process(record, lab)` gets: the topics and retry policy, a producer, commits, the
    downstream (`deliver`), and Redis to remember what was delivered. See the lab's task."""

    def __init__(self, topics: RetryTopics, consumer, producer, client: redis.Redis, prefix: str,
                 delay_ms: int = DELAY_MS, crash: Crash | None = None):
        self.topics = topics
        self.max_attempts = MAX_ATTEMPTS
        self.producer = producer if crash is None else CrashingProducer(producer, self)
        self.redis = client
        self.committed: dict = {}  # TopicPartition -> the offset lab.commit committed last
        self._consumer, self._prefix, self._delay, self._crash = consumer, prefix, delay_ms, crash
        self._calls: collections.Counter = collections.Counter()

    def __repr__(self) -> str:
        return f"<lab: source {self.topics.source}, max_attempts {self.max_attempts}>"

    def delay_ms(self, attempt: int) -> int:
        """The backoff before retry `attempt` (1-based); it doubles for each retry."""
        return backoff_ms(attempt, self._delay)

    @staticmethod
    def now_ms() -> int:
        """The time now, in epoch milliseconds."""
        return time.time_ns() // 1_000_000

    def key(self, name: str) -> str:
        """A Redis key of yours under the check's prefix (deleted after the check)."""
        return f"{self._prefix}:yours:{name}"

    async def commit(self, record) -> None:
        """Commit `record.offset + 1` for the record's partition: it will not be read again."""
        if record.topic == self.topics.source:
            self._reached("commit")
        partition = TopicPartition(record.topic, record.partition)
        await self._consumer.commit({partition: record.offset + 1})
        self.committed[partition] = record.offset + 1

    async def deliver(self, event) -> None:
        """The side effect (an email, a push). Raises ValueError for an event it can never
        deliver, ConnectionError while the downstream is down for it."""
        if not isinstance(event, dict) or "id" not in event:
            raise ValueError(f"an event is a JSON object with an 'id', not {event!r:.60}")
        event_id = str(event["id"])
        if event.get("type") not in KNOWN_TYPES:
            self._log(event_id, "fatal")
            raise ValueError(f"unknown event type {event.get('type')!r}")
        calls = self.redis.hincrby(self._harness("calls"), event_id, 1)
        if event.get("always_fail") or calls <= int(event.get("fail_times", 0)):
            self._log(event_id, "transient")
            raise ConnectionError(f"the {event['type']} service did not answer")
        self._log(event_id, "delivered")

    def _harness(self, name: str) -> str:
        return f"{self._prefix}:harness:{name}"

    def _log(self, event_id: str, outcome: str) -> None:
        entry = {"id": event_id, "at_ms": time.time() * 1000, "outcome": outcome}
        self.redis.rpush(self._harness("attempts"), json.dumps(entry))

    def attempts(self) -> dict[str, list[dict]]:
        """The check's record of every `deliver` call so far, by event id, in order."""
        return attempts_log(self.redis, self._prefix)

    def _reached(self, kind: str) -> None:
        """Count a call; at the planned one, die as a crash does: no cleanup, no commit."""
        self._calls[kind] += 1
        if self._crash and (kind, self._calls[kind]) == (self._crash.at, self._crash.call):
            print(json.dumps({"crashed": kind, "call": self._crash.call}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def attempts_log(client: redis.Redis, prefix: str) -> dict[str, list[dict]]:
    """Every `deliver` call logged under `prefix` (by any process), by event id, in order."""
    found: dict[str, list[dict]] = collections.defaultdict(list)
    for raw in client.lrange(f"{prefix}:harness:attempts", 0, -1):
        entry = json.loads(raw)
        found[entry["id"]].append(entry)
    return found


def times_delivered(attempts: dict, event_id: str) -> int:
    """How many times `event_id` was delivered, from the attempts log."""
    return sum(a["outcome"] == "delivered" for a in attempts.get(event_id, []))
