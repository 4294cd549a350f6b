"""The WebSocket channel: who is connected right now, and pushing an event to a user's sockets.

A user may have several connections (two tabs, a phone); a push goes to each. A user with none is
offline *now*, which may change in a second: that is a `TransientError`, so the retry manager tries
again with backoff and dead-letters the event after its last attempt. (Notebook 08 stores such
events for the next login instead.)

A client that stops reading fills its socket's buffers until a send waits for it; events are
handled one at a time, so every email and push behind would wait too. Each send is bounded by
`send_timeout`: a socket that does not take a push in time counts as closed, is dropped, and is
closed in the background (its client sees the close and may reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.websockets import WebSocketDisconnect

from backendlab.topics.kafkaretry import TransientError
from backendlab.topics.kafkaretry.notifications.events import Event

# What a send to a socket that closed under us raises (Starlette, uvicorn's ClientDisconnected).
CLOSED = (WebSocketDisconnect, RuntimeError, OSError)
SEND_TIMEOUT_S = 2.0
TOO_SLOW = (1008, "too slow: a push was not taken within the send timeout")


class WebSocketHandler:
    """The open connections per user (anything with `async send_text(str)` and
    `async close(code, reason)`)."""

    def __init__(self, send_timeout: float = SEND_TIMEOUT_S):
        self.connections: dict[str, set] = {}
        self.send_timeout = send_timeout
        self._closing: set[asyncio.Task] = set()

    def add(self, user: str, socket) -> None:
        self.connections.setdefault(user, set()).add(socket)

    def remove(self, user: str, socket) -> None:
        sockets = self.connections.get(user)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.connections[user]

    @property
    def users(self) -> int:
        return len(self.connections)

    @property
    def sockets(self) -> int:
        return sum(len(sockets) for sockets in self.connections.values())

    async def send(self, event: Event) -> None:
        """Send the event as JSON text to every connection of its user; TransientError if none
        took it."""
        text = json.dumps(event.payload)
        delivered = 0
        for socket in list(self.connections.get(event.user, ())):
            if await self._deliver(socket, text):
                delivered += 1
            else:
                self.remove(event.user, socket)
        if not delivered:
            raise TransientError(f"user offline: {event.user} has no open WebSocket connection")

    async def _deliver(self, socket, text: str) -> bool:
        """Send `text` to one socket within `send_timeout`; False if it closed or was too slow
        (then it is also closed, in the background so that this push does not wait for it)."""
        try:
            await asyncio.wait_for(socket.send_text(text), self.send_timeout)
        except TimeoutError:  # first: an OSError too, so CLOSED would catch it
            task = asyncio.create_task(self._close_slow(socket))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            return False
        except CLOSED:
            return False
        return True

    @staticmethod
    async def _close_slow(socket) -> None:
        """Close a socket that stopped reading: the close waits behind the pushes it has not read,
        until its client reads again or uvicorn's ping timeout ends the connection."""
        with contextlib.suppress(*CLOSED):
            await socket.close(code=TOO_SLOW[0], reason=TOO_SLOW[1])
