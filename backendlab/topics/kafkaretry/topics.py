"""Retry and dead-letter topic names, and the topics one run creates and always deletes.

A source topic `orders` has retry topics `orders.retry.1`, `orders.retry.2`, ... (one per retry,
each with a longer delay) and one dead-letter topic `orders.dlt`. A run (a notebook, a lab check, a
test) names its source uniquely, so runs that share one broker never see each other's messages, and
`run_topics` deletes all of them when the run ends, also when it fails.

    async with run_topics(bootstrap, "orders", retries=3) as topics:
        topics.source, topics.retry(1), topics.dlt
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass

# Kafka's rule for topic names: these characters, at most 249 of them.
_LEGAL = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def check_name(name: str) -> str:
    if not _LEGAL.match(name) or name in {".", ".."}:
        raise ValueError(f"not a legal Kafka topic name: {name!r} "
                         "(use letters, digits, '.', '_', '-')")
    return name


def retry_topic(topic: str, n: int) -> str:
    """`<topic>.retry.<n>`: where a message waits before retry `n` (1-based)."""
    if n < 1:
        raise ValueError(f"retry topics count from 1, got {n}")
    return check_name(f"{topic}.retry.{n}")


def dlt_topic(topic: str) -> str:
    """`<topic>.dlt`: where a message goes when it will not be retried again."""
    return check_name(f"{topic}.dlt")


def unique_topic(prefix: str = "backendlab") -> str:
    """A topic name no other run uses: `<prefix>-<12 hex digits>`."""
    return check_name(f"{prefix}-{uuid.uuid4().hex[:12]}")


@dataclass(frozen=True)
class RetryTopics:
    """A source topic with `retries` retry topics and a dead-letter topic."""

    source: str
    retries: int

    def __post_init__(self) -> None:
        check_name(self.source)
        if self.retries < 0:
            raise ValueError("retries must be >= 0")

    def retry(self, n: int) -> str:
        if n > self.retries:
            raise ValueError(f"{self.source} has {self.retries} retry topics, not {n}")
        return retry_topic(self.source, n)

    @property
    def dlt(self) -> str:
        return dlt_topic(self.source)

    @property
    def retry_names(self) -> list[str]:
        """`<source>.retry.1` .. `<source>.retry.<retries>`, in order."""
        return [self.retry(n) for n in range(1, self.retries + 1)]

    def all(self) -> list[str]:
        return [self.source, *self.retry_names, self.dlt]


def _admin(bootstrap: str):
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)


async def create_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    """Create `names`; raises if any already exists or fails (the broker may not raise itself)."""
    from aiokafka.admin import NewTopic

    admin = _admin(bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names])
        failed = [(t[0], t[1]) for t in response.topic_errors if t[1] != 0]
        if failed:
            raise RuntimeError(f"could not create topics (name, Kafka error code): {failed}")
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete those of `names` that exist."""
    admin = _admin(bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def list_topics(bootstrap: str) -> set[str]:
    admin = _admin(bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def run_topics(bootstrap: str | None = None, prefix: str = "backendlab", retries: int = 3,
                     partitions: int = 1):
    """Create a uniquely named source with its retry and dead-letter topics; delete them on exit.

    `bootstrap` defaults to the suite's broker (embedded Tansu unless KAFKA_BOOTSTRAP_SERVERS).
    """
    if bootstrap is None:
        from backendlab.services.kafka import kafka_bootstrap

        bootstrap = kafka_bootstrap()
    topics = RetryTopics(unique_topic(prefix), retries)
    try:
        await create_topics(bootstrap, topics.all(), partitions)
        yield topics
    finally:
        await delete_topics(bootstrap, topics.all())
