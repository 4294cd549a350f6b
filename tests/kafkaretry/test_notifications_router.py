"""The notification router as a specification: what makes an event bad (fatal, to the DLT at once),
which handler each type goes to, and which failures of a channel are worth a retry."""

import asyncio
import json
import time
from types import SimpleNamespace

import pytest

from backendlab.topics.kafkaretry import FatalError, Kind, TransientError, classify
from backendlab.topics.kafkaretry.notifications import (Event, NotificationRouter, WebSocketHandler, compose,
                                                        parse_event)


def record(value) -> SimpleNamespace:
    """A stand-in for an aiokafka record: the router reads only its value."""
    return SimpleNamespace(value=value if isinstance(value, bytes) or value is None
                           else json.dumps(value).encode())


class Recorder:
    """A handler that keeps what it was sent, or raises `error`."""

    def __init__(self, error: Exception | None = None):
        self.events, self.error = [], error

    async def send(self, event):
        if self.error:
            raise self.error
        self.events.append(event)


class FakeSocket:
    """Anything with `async send_text` and `async close`; `closed` ones fail like a socket that
    went away, `stuck` ones never finish a send, like one whose client stopped reading."""

    def __init__(self, closed: bool = False, stuck: bool = False):
        self.texts, self.closed, self.stuck = [], closed, stuck
        self.closed_with = None

    async def send_text(self, text):
        if self.closed:
            raise RuntimeError('Cannot call "send" once a close message has been sent.')
        if self.stuck:
            await asyncio.Event().wait()
        self.texts.append(text)

    async def close(self, code, reason):
        self.closed_with = (code, reason)


def route(router, value):
    return asyncio.run(router(record(value)))


def fails(router, value) -> tuple[Kind, str]:
    with pytest.raises(Exception) as caught:
        route(router, value)
    return classify(caught.value), str(caught.value)


@pytest.fixture
def channels():
    return {"email": Recorder(), "push": Recorder()}


def test_each_type_goes_to_its_handler_and_is_counted(channels):
    router = NotificationRouter(channels)
    route(router, {"id": "e1", "type": "email", "user": "ana", "to": "a@x.test"})
    route(router, {"id": 7, "type": "push", "user": "ben-2", "text": "hi"})
    [email], [push] = channels["email"].events, channels["push"].events
    assert email == Event("e1", "email", "ana", {"id": "e1", "type": "email", "user": "ana",
                                                 "to": "a@x.test"})
    assert (push.id, push.user, push.payload["text"]) == ("7", "ben-2", "hi")
    assert router.delivered == {"email": 1, "push": 1}


def test_an_unknown_type_is_fatal_and_names_the_known_ones(channels):
    kind, message = fails(NotificationRouter(channels), {"id": 1, "type": "sms", "user": "ana"})
    assert kind is Kind.FATAL
    assert message == "unknown event type 'sms'; known: email, push"


@pytest.mark.parametrize("value, reason", [
    (b"{not json", "not UTF-8 JSON"),
    (b"\xff\xfe", "not UTF-8 JSON"),
    (None, "the record has no value"),
    ([1, 2], "expected a JSON object, got list"),
    ({"type": "push", "user": "ana"}, "'id' must be"),
    ({"id": True, "type": "push", "user": "ana"}, "'id' must be"),
    ({"id": 1, "user": "ana"}, "'type' must be a string"),
    ({"id": 1, "type": "push"}, "'user' must be 1-64 letters"),
    ({"id": 1, "type": "push", "user": "../etc"}, "'user' must be 1-64 letters"),
    ({"id": 1, "type": "push", "user": "u" * 65}, "'user' must be 1-64 letters"),
])
def test_a_bad_payload_is_fatal_with_the_reason(channels, value, reason):
    kind, message = fails(NotificationRouter(channels), value)
    assert kind is Kind.FATAL
    assert message.startswith("bad payload") and reason in message
    assert not channels["email"].events and not channels["push"].events


def test_a_handlers_failure_keeps_its_kind_and_is_not_counted():
    router = NotificationRouter({"email": Recorder(TransientError("SMTP down")),
                                 "push": Recorder(FatalError("bad address"))})
    assert fails(router, {"id": 1, "type": "email", "user": "a"}) == (Kind.TRANSIENT, "SMTP down")
    assert fails(router, {"id": 2, "type": "push", "user": "a"}) == (Kind.FATAL, "bad address")
    assert router.delivered == {"email": 0, "push": 0}


def test_a_push_goes_to_every_connection_of_the_user_only():
    pushes = WebSocketHandler()
    tab, phone, other = FakeSocket(), FakeSocket(), FakeSocket()
    pushes.add("ana", tab)
    pushes.add("ana", phone)
    pushes.add("ben", other)
    asyncio.run(pushes.send(parse_event(b'{"id": 1, "type": "push", "user": "ana", "n": 1}')))
    assert [json.loads(t) for t in tab.texts] == [{"id": 1, "type": "push", "user": "ana", "n": 1}]
    assert phone.texts == tab.texts and other.texts == []
    assert (pushes.users, pushes.sockets) == (2, 3)


def test_an_offline_user_is_transient():
    event = parse_event(b'{"id": 1, "type": "push", "user": "ghost"}')
    with pytest.raises(TransientError, match="user offline: ghost has no open WebSocket"):
        asyncio.run(WebSocketHandler().send(event))


def test_a_connection_that_closed_is_dropped_and_the_push_still_reaches_the_others():
    pushes, gone, alive = WebSocketHandler(), FakeSocket(closed=True), FakeSocket()
    pushes.add("ana", gone)
    pushes.add("ana", alive)
    asyncio.run(pushes.send(parse_event(b'{"id": 1, "type": "push", "user": "ana"}')))
    assert len(alive.texts) == 1 and pushes.sockets == 1


def test_a_user_whose_only_connection_closed_is_offline():
    pushes, gone = WebSocketHandler(), FakeSocket(closed=True)
    pushes.add("ana", gone)
    with pytest.raises(TransientError, match="user offline"):
        asyncio.run(pushes.send(parse_event(b'{"id": 1, "type": "push", "user": "ana"}')))
    assert pushes.users == 0


async def push_with_one_stuck(*others: FakeSocket) -> tuple[WebSocketHandler, FakeSocket, float]:
    """Push to ana, one of whose sockets never takes a send, and everyone else's: the handler,
    that socket and how long the push took."""
    pushes, stuck = WebSocketHandler(send_timeout=0.05), FakeSocket(stuck=True)
    for socket in (stuck, *others):
        pushes.add("ana", socket)
    started = time.monotonic()
    try:
        await pushes.send(parse_event(b'{"id": 1, "type": "push", "user": "ana"}'))
    finally:
        took = time.monotonic() - started
        await asyncio.sleep(0)  # the background close of the stuck socket
    return pushes, stuck, took


def test_a_connection_that_does_not_take_a_push_in_time_is_dropped_and_closed():
    alive = FakeSocket()
    pushes, stuck, took = asyncio.run(push_with_one_stuck(alive))
    assert len(alive.texts) == 1 and took < 1
    assert pushes.sockets == 1 and stuck.closed_with[0] == 1008


def test_a_user_whose_only_connection_is_stuck_is_offline():
    with pytest.raises(TransientError, match="user offline"):
        asyncio.run(push_with_one_stuck())


def test_removing_the_last_connection_forgets_the_user():
    pushes, socket = WebSocketHandler(), FakeSocket()
    pushes.add("ana", socket)
    pushes.remove("ana", socket)
    pushes.remove("nobody", socket)
    assert pushes.connections == {}


def email_event(**fields) -> Event:
    payload = {"id": "m1", "type": "email", "user": "ana", "to": "ana@example.test",
               "subject": "Hello", "body": "Hi Ana.", **fields}
    return Event("m1", "email", "ana", payload)


def test_an_email_event_becomes_a_message_carrying_its_id():
    message = compose(email_event(), "noreply@example.test")
    assert (message["To"], message["Subject"], message["X-Notification-Id"]) == \
        ("ana@example.test", "Hello", "m1")
    assert message.get_content().strip() == "Hi Ana."


@pytest.mark.parametrize("fields, reason", [
    ({"to": None}, "'to' must be a non-empty string"),
    ({"to": "not-an-address"}, "'to' is not an address"),
    ({"to": "a@b.test\r\nBcc: everyone@example.test"}, "'to' contains a line break"),
    ({"subject": "Hi\nBcc: x@y.test"}, "'subject' contains a line break"),
    ({"subject": "s" * 201}, "'subject' is longer than 200"),
    ({"body": ""}, "'body' must be a non-empty string"),
])
def test_an_unusable_email_event_is_fatal(fields, reason):
    with pytest.raises(FatalError, match=reason):
        compose(email_event(**fields), "noreply@example.test")
