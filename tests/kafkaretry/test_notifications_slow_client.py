"""A WebSocket client that stops reading, over a real uvicorn connection: once the socket buffers
are full a push to it times out instead of holding up every event behind it, it is dropped (its
user is offline, a transient failure), and when it reads again it finds the close after the
pushes it had not read."""

import asyncio
import time

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect

from backendlab import processes
from backendlab.topics.kafkaretry import TransientError
from backendlab.topics.kafkaretry.notifications import Event, WebSocketHandler

SEND_TIMEOUT = 0.5
PUSH = "x" * 1_000_000  # a few fill the socket buffers (the client turns compression off)


def app_for(pushes: WebSocketHandler) -> Starlette:
    """A push-only endpoint: every connection is user ana's until its client leaves."""
    async def endpoint(websocket):
        await websocket.accept()
        pushes.add("ana", websocket)
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            pushes.remove("ana", websocket)
    return Starlette(routes=[WebSocketRoute("/ws", endpoint)])


async def push_until_refused(pushes: WebSocketHandler) -> list[float]:
    """Push big events to ana until one fails; how long each push took."""
    took = []
    for n in range(200):
        started = time.monotonic()
        try:
            await pushes.send(Event(str(n), "push", "ana", {"id": n, "text": PUSH}))
        except TransientError:
            took.append(time.monotonic() - started)
            return took
        took.append(time.monotonic() - started)
    pytest.fail("200 MB went to a client that does not read")


async def close_code_after_reading(client) -> int:
    """Read what the client had left unread, then the close; its code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(client.recv(), 5)
    return closed.value.rcvd.code


async def scenario() -> tuple[list[float], int, int]:
    pushes = WebSocketHandler(send_timeout=SEND_TIMEOUT)
    port = processes.free_port()
    server = uvicorn.Server(uvicorn.Config(app_for(pushes), host="127.0.0.1", port=port,
                                           log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        # max_queue=1: the client library stops reading the socket once a message is unread
        client = await connect(f"ws://127.0.0.1:{port}/ws", max_queue=1, compression=None)
        try:
            while pushes.sockets == 0:
                await asyncio.sleep(0.01)
            took = await push_until_refused(pushes)  # the client reads nothing meanwhile
            return took, pushes.sockets, await close_code_after_reading(client)
        finally:
            client.transport.abort()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout():
    took, left, code = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert len(took) > 1  # the first pushes went into the buffers
    assert SEND_TIMEOUT <= took[-1] < SEND_TIMEOUT + 1
    assert left == 0 and code == 1008
