"""The notification microservice's Kafka side: one retry consumer over the events topic and its
retry topics, every record through the retry manager to the router.

    consumer  ->  RetryRouter (retry manager / DLT)  ->  NotificationRouter  ->  email | push

Records are handled one at a time in the order the poll loop gets them; a failed one leaves the
source partition for a retry topic, so the records behind it (the same user's too) go on without
it. That keeps the topic flowing, at the price of per-key order (see the experiment of notebook 07).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter

from backendlab.topics.kafkaretry import RetryLoop, RetryPolicy, RetryRouter, RetryTopics, retry_consumer
from backendlab.topics.kafkaretry.notifications.router import NotificationRouter


class NotificationConsumer:
    """Consumes `topics` with a retry loop in a background task between `start()` and `stop()`."""

    def __init__(self, bootstrap: str, topics: RetryTopics, router: NotificationRouter,
                 policy: RetryPolicy, group: str):
        self.bootstrap, self.topics, self.router = bootstrap, topics, router
        self.policy, self.group = policy, group
        self.routes: Counter[str] = Counter(retry=0, fatal=0, exhausted=0)
        self.error: BaseException | None = None
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._retry_router: RetryRouter | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, join_timeout: float = 15.0) -> None:
        """Start the producer and consumer, wait until the group assigned partitions, then poll
        in the background."""
        from aiokafka import AIOKafkaProducer

        try:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
            self._stack.push_async_callback(producer.stop)
            await producer.start()
            consumer = await self._stack.enter_async_context(
                retry_consumer(self.bootstrap, self.topics, self.group))
            self._retry_router = RetryRouter(producer, consumer, self.topics, self.policy)
            loop = RetryLoop(consumer, self.topics, self.process)
            await loop.join(join_timeout)
        except BaseException:
            await self._stack.aclose()
            raise
        self._task = asyncio.create_task(self._poll(loop))

    async def _poll(self, loop: RetryLoop) -> None:
        try:
            await loop.run(until=self._stopping.is_set, timeout=math.inf)
        except Exception as exc:  # kept for /health, which then answers 503 with it
            self.error = exc

    async def process(self, record) -> None:
        route = await self._retry_router.process(record, self.router)
        if route is not None:
            self.routes[route.reason] += 1

    async def stop(self) -> None:
        """Finish the record in hand, leave the group, stop the clients."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self._stack.aclose()
