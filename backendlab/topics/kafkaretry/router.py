"""The retry manager: where a failed message goes next, and the order of publish and commit.

Kafka does not retry a message whose handler failed; the consumer decides. `decide` is that
decision as a pure function:

- a fatal error goes to the dead-letter topic at once (retrying bad input only delays it);
- a record whose `x-retry-*` headers do not decode goes there too, as fatal: how often it failed is
  unknown, so retrying it could loop for ever;
- a transient error goes to the next retry topic, `<source>.retry.<attempts>`, with a due time
  `failed_at + backoff(attempts)` in its headers, until `max_attempts` attempts have failed; then
  to the dead-letter topic.

`RetryRouter` carries it out with aiokafka: publish the copy (original key, value and headers plus
the retry metadata), wait for the broker's acknowledgement, and only then commit the failed record's
offset. A crash between the two gives a duplicate copy, never a lost message: at-least-once.
The router only writes the due time; holding a retry partition until it (pause and resume) is the
retry consumer's job.
"""

from __future__ import annotations

import inspect
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from aiokafka import TopicPartition

from backendlab.topics.kafkaretry.backoff import Backoff
from backendlab.topics.kafkaretry.errors import Kind, classify, clip, describe
from backendlab.topics.kafkaretry.headers import RetryMetadata, decode, with_metadata
from backendlab.topics.kafkaretry.topics import RetryTopics


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts every attempt, the first included: 4 means up to 3 retries."""

    max_attempts: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    classify: Callable[[BaseException], Kind] = classify

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    @property
    def retries(self) -> int:
        return self.max_attempts - 1


@dataclass(frozen=True)
class Route:
    """Where one failed record goes: `reason` is "retry", "fatal" or "exhausted"."""

    topic: str
    reason: str
    metadata: RetryMetadata

    @property
    def dead(self) -> bool:
        return self.reason != "retry"


def decide(message, exc: BaseException, topics: RetryTopics, policy: RetryPolicy, now_ms: int,
           rng: random.Random | None = None) -> Route:
    """The route for `message` (an aiokafka record, or anything with topic, partition, offset and
    headers) whose handler raised `exc` at `now_ms`."""
    try:
        previous = decode(message.headers)
    except ValueError as malformed:
        return _undecodable(message, exc, malformed, topics, now_ms)
    if previous is None:  # first failure: the record is the original
        origin = (message.topic, message.partition, message.offset)
        attempts, first_seen = 1, now_ms
    else:
        origin = (previous.original_topic, previous.original_partition, previous.original_offset)
        attempts, first_seen = previous.attempts + 1, previous.first_seen_ms
    kind = Kind(policy.classify(exc))
    meta = dict(original_topic=origin[0], original_partition=origin[1], original_offset=origin[2],
                attempts=attempts, error=describe(exc), error_kind=kind.value,
                first_seen_ms=first_seen, failed_at_ms=now_ms)
    if kind is Kind.FATAL:
        return Route(topics.dlt, "fatal", RetryMetadata(**meta))
    if attempts >= policy.max_attempts:
        return Route(topics.dlt, "exhausted", RetryMetadata(**meta))
    due = now_ms + policy.backoff.delay_ms(attempts, rng)
    return Route(topics.retry(attempts), "retry", RetryMetadata(**meta, due_ms=due))


def _undecodable(message, exc: BaseException, malformed: ValueError, topics: RetryTopics,
                 now_ms: int) -> Route:
    """Dead-letter, as fatal, a record whose retry headers do not decode: its attempts and origin
    are unknown, so it counts as its own origin and first attempt."""
    error = clip(f"malformed retry headers ({malformed}); the handler raised {describe(exc)}")
    meta = RetryMetadata(original_topic=message.topic, original_partition=message.partition,
                         original_offset=message.offset, attempts=1, error=error,
                         error_kind=Kind.FATAL.value, first_seen_ms=now_ms, failed_at_ms=now_ms)
    return Route(topics.dlt, "fatal", meta)


def now_ms() -> int:
    """The wall clock in epoch milliseconds, as the retry headers carry it."""
    return int(time.time() * 1000)


class RetryRouter:
    """Runs handlers and routes their failures, for a consumer with manual commits.

        router = RetryRouter(producer, consumer, topics, RetryPolicy(max_attempts=3))
        route = await router.process(record, handler)   # None when the handler succeeded
    """

    def __init__(self, producer, consumer, topics: RetryTopics, policy: RetryPolicy | None = None,
                 *, clock: Callable[[], int] = now_ms, rng: random.Random | None = None):
        self.producer = producer
        self.consumer = consumer
        self.topics = topics
        self.policy = policy or RetryPolicy()
        if topics.retries < self.policy.retries:
            raise ValueError(f"{self.policy.max_attempts} attempts need {self.policy.retries} "
                             f"retry topics; {topics.source} has {topics.retries}")
        self.clock = clock
        self.rng = rng or random.Random()

    async def process(self, message, handler) -> Route | None:
        """Run `handler(message)` (sync or async); commit on success, route on failure."""
        try:
            result = handler(message)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            return await self.route(message, exc)
        await self.commit(message)
        return None

    async def route(self, message, exc: BaseException) -> Route:
        """Publish `message` to its next topic, wait for the acknowledgement, then commit it."""
        route = decide(message, exc, self.topics, self.policy, self.clock(), self.rng)
        await self.producer.send_and_wait(route.topic, message.value, key=message.key,
                                          headers=with_metadata(message.headers, route.metadata))
        await self.commit(message)
        return route

    async def commit(self, message) -> None:
        partition = TopicPartition(message.topic, message.partition)
        await self.consumer.commit({partition: message.offset + 1})
