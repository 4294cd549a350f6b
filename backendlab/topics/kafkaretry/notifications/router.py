"""The notification router: reads an event from a Kafka record and hands it to its channel.

It only decides where an event goes; whether a failure is retried or dead-lettered is the retry
manager's job (`kafkaretry.RetryRouter`), which calls the router as its handler:

    router = NotificationRouter({"email": EmailHandler(...), "push": WebSocketHandler()})
    await retry_router.process(record, router)

A handler is anything with `async send(event)`; it raises `TransientError` (try again later) or
`FatalError` (never will work). An unknown type is fatal: no retry can teach the router a channel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Protocol

from backendlab.topics.kafkaretry import FatalError
from backendlab.topics.kafkaretry.notifications.events import Event, parse_event


class Handler(Protocol):
    async def send(self, event: Event) -> None: ...


class NotificationRouter:
    """Routes each record's event by its `type` to a handler; counts what each handler delivered."""

    def __init__(self, handlers: Mapping[str, Handler]):
        self.handlers = dict(handlers)
        self.delivered: Counter[str] = Counter({kind: 0 for kind in self.handlers})

    async def __call__(self, record) -> None:
        event = parse_event(record.value)
        handler = self.handlers.get(event.type)
        if handler is None:
            raise FatalError(f"unknown event type {event.type[:40]!r}; "
                             f"known: {', '.join(sorted(self.handlers))}")
        await handler.send(event)
        self.delivered[event.type] += 1
