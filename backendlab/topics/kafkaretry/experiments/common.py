"""What the Kafka retry experiments share: the broker, a producer, and the topics a run makes.

Every experiment is a synchronous function (a notebook's kernel already runs an event loop, so the
asyncio scenario runs in a thread of its own, see `run`). Its topics come from `run_topics`, named
uniquely and deleted when the experiment ends; `topics_left()` proves it.
"""

from __future__ import annotations

import asyncio
import contextlib

from backendlab.coroutines import run_coroutine
from backendlab.servers import start_server
from backendlab.topics.kafkaretry import list_topics
from backendlab.topics.kafkaretry import run_topics as _run_topics
from backendlab.topics.kafkaretry.producer import producer
from backendlab.topics.kafkaretry.quiet import quiet_logger
from backendlab.services.kafka import kafka_bootstrap

__all__ = ["PREFIX", "all_or_none", "bootstrap", "notification_service", "producer", "quiet_logger",
           "run", "run_topics", "topics_left"]

PREFIX = "bl07"
_used_sources: list[str] = []


def bootstrap() -> str:
    """The suite's broker (embedded Tansu unless KAFKA_BOOTSTRAP_SERVERS names one)."""
    return kafka_bootstrap()


def run(coro, timeout: float = 45.0):
    """Run an experiment's scenario to completion from a notebook cell or a test."""
    return run_coroutine(coro, timeout=timeout)


@contextlib.asynccontextmanager
async def run_topics(address: str, retries: int = 2, partitions: int = 1):
    """A uniquely named source topic with its retry and dead-letter topics, deleted on exit."""
    async with _run_topics(address, PREFIX, retries=retries, partitions=partitions) as topics:
        _used_sources.append(topics.source)
        yield topics


async def notification_service(stack: contextlib.AsyncExitStack, address: str, smtp: str,
                               max_attempts: int, base_ms: int):
    """Fresh topics, a producer and the notifications service reading them and mailing `smtp`,
    each closed by `stack`: (topics, producer, server)."""
    topics = await stack.enter_async_context(run_topics(address, retries=max_attempts - 1))
    kafka = await stack.enter_async_context(producer(address))
    server = await asyncio.to_thread(
        start_server, "notifications", topic=topics.source, smtp=smtp, bootstrap=address,
        max_attempts=max_attempts, base_ms=base_ms, no_jitter=True)
    stack.push_async_callback(asyncio.to_thread, server.stop)
    return topics, kafka, server


async def all_or_none(*coroutines) -> list:
    """Run `coroutines` concurrently; when one fails, cancel the others (so consumers stop with
    nothing still polling them) and raise its error."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def topics_left() -> list[str]:
    """Topics still on the broker that this process's experiments created (empty after clean runs)."""
    if not _used_sources:
        return []
    names = run(list_topics(bootstrap()), timeout=15)
    return sorted(name for name in names
                  if any(name == s or name.startswith(s + ".") for s in _used_sources))
