"""The WebSocket channel: who is connected right now, and pushing an event to a user's sockets.

A user may have several connections (two tabs, a phone); a push goes to each. A user with none is
offline *now*, which may change in a second: that is a `TransientError`, so the retry manager tries
again with backoff and dead-letters the event after its last attempt. (Notebook 08 stores such
events for the next login instead.)
"""

from __future__ import annotations

import json

from starlette.websockets import WebSocketDisconnect

from backendlab.kafkaretry import TransientError
from backendlab.notifications.events import Event

# What a send to a socket that closed under us raises (Starlette, uvicorn's ClientDisconnected).
CLOSED = (WebSocketDisconnect, RuntimeError, OSError)


class WebSocketHandler:
    """The open connections per user (anything with `async send_text(str)`)."""

    def __init__(self):
        self.connections: dict[str, set] = {}

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
            try:
                await socket.send_text(text)
                delivered += 1
            except CLOSED:
                self.remove(event.user, socket)
        if not delivered:
            raise TransientError(f"user offline: {event.user} has no open WebSocket connection")
