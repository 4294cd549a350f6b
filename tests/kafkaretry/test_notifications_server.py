"""The notification service as a learner starts it, on the test broker: pushes reach every
connection of a user, emails reach the SMTP server, an offline user is retried and dead-lettered,
bad events go to the DLT at once with their headers; bad user ids, bad options and a broker that
does not answer get clear answers; SIGTERM stops it cleanly. Creating missing topics and starting
a broker of its own: test_notifications_first_run.py."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from backendlab import processes
from backendlab.topics.kafkaretry import (RetryTopics, create_topics, decode, delete_topics, read_topic,
                                          unique_topic)
from backendlab.topics.kafkaretry.notifications import SmtpSink
from backendlab.servers import start_server
from conftest import kafka_for_tests

MAX_ATTEMPTS, BASE_MS = 3, 300
RULE = "user id must be 1-64 letters, digits, '_' or '-'"


@pytest.fixture(scope="module")
def broker():
    with kafka_for_tests() as address:
        yield address


@contextlib.contextmanager
def fresh_topics(broker):
    names = RetryTopics(unique_topic("bltest-notify"), MAX_ATTEMPTS - 1)
    asyncio.run(create_topics(broker, names.all()))
    try:
        yield names
    finally:
        asyncio.run(delete_topics(broker, names.all()))


@pytest.fixture(scope="module")
def topics(broker):
    """The topics of the module's service."""
    with fresh_topics(broker) as names:
        yield names


@pytest.fixture
def other_topics(broker):
    """Topics of their own for a test that starts another service (it would consume the module
    service's events again from the start)."""
    with fresh_topics(broker) as names:
        yield names


@pytest.fixture(scope="module")
def sink():
    with SmtpSink(busy_first=1) as running:
        yield running


@pytest.fixture(scope="module")
def service(broker, topics, sink):
    with start_server("notifications", topic=topics.source, smtp=sink.address, bootstrap=broker,
                      max_attempts=MAX_ATTEMPTS, base_ms=BASE_MS, no_jitter=True) as server:
        yield server


def ws_url(service, user: str) -> str:
    return service.url.replace("http://", "ws://") + f"/ws/{user}"


async def online(service, user: str):
    """A connected client of `user`, past the welcome (from then on pushes reach it)."""
    socket = await connect(ws_url(service, user), open_timeout=10)
    assert json.loads(await socket.recv()) == {"type": "welcome", "user": user}
    return socket


async def until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def scenario(broker, topics, service, sink):
    from aiokafka import AIOKafkaProducer

    out = {}
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    http = httpx.AsyncClient(base_url=service.url)

    async def send(value, key: str):
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        await producer.send_and_wait(topics.source, body, key=key.encode())

    async def stats():
        return (await http.get("/stats")).json()

    sockets = []

    async def connected(user: str):
        sockets.append(await online(service, user))
        return sockets[-1]

    try:
        tab, phone, ben = [await connected(u) for u in ("ana", "ana", "ben")]
        await send({"id": "l1", "type": "push", "user": "late", "text": "while offline"}, "late")
        await until(lambda: _at_least(stats, "retried", 1))
        late = await connected("late")
        out["connected_stats"] = await stats()
        await send({"id": "p1", "type": "push", "user": "ana", "text": "hello"}, "ana")
        await send({"id": "m1", "type": "email", "user": "ana", "to": "ana@example.test",
                    "subject": "Welcome", "body": "Hi."}, "ana")
        await send({"id": "g1", "type": "push", "user": "ghost"}, "ghost")
        await send({"id": "x1", "type": "sms", "user": "ana"}, "ana")
        await send(b'{"id": "broken"', "bad-json")
        out["tab"] = json.loads(await asyncio.wait_for(tab.recv(), 10))
        out["phone"] = json.loads(await asyncio.wait_for(phone.recv(), 10))
        out["late"] = json.loads(await asyncio.wait_for(late.recv(), 10))
        await ben.send("hello, server")
        out["reply"] = json.loads(await asyncio.wait_for(ben.recv(), 10))
        await send({"id": "b1", "type": "push", "user": "ben"}, "ben")
        out["ben"] = json.loads(await asyncio.wait_for(ben.recv(), 10))
        await until(lambda: _at_least(stats, "dead_lettered", 3))
        await until(lambda: _true(len(sink.messages) >= 1))
        out["stats"] = await stats()
        out["dlt"] = {_id(r): r for r in await read_topic(broker, topics.dlt)}
        out["retries"] = [r for n in (1, 2) for r in await read_topic(broker, topics.retry(n))]
    finally:
        for socket in sockets:
            await socket.close()
        await http.aclose()
        await producer.stop()
    return out


async def _at_least(stats, field: str, count: int) -> bool:
    return (await stats())[field] >= count


async def _true(value: bool) -> bool:
    return value


def _id(record) -> str:
    try:
        return json.loads(record.value)["id"]
    except ValueError:
        return record.key.decode()


@pytest.fixture(scope="module")
def run(broker, topics, service, sink):
    return asyncio.run(asyncio.wait_for(scenario(broker, topics, service, sink), 60))


def test_health_and_stats(service):
    health = httpx.get(service.url + "/health").json()
    assert health["status"] == "ok" and health["topic"].startswith("bltest-notify-")
    assert set(httpx.get(service.url + "/stats").json()) == \
        {"handled", "retried", "dead_lettered", "connected_users", "connections"}


def test_a_push_reaches_every_connection_of_its_user(run):
    expected = {"id": "p1", "type": "push", "user": "ana", "text": "hello"}
    assert run["tab"] == expected and run["phone"] == expected


def test_a_user_who_connects_during_the_retries_gets_the_push(run):
    assert run["late"]["id"] == "l1"
    assert "l1" not in run["dlt"]
    assert [decode(r.headers).attempts for r in run["retries"] if _id(r) == "l1"][:1] == [1]


def test_a_client_message_is_answered_and_the_socket_keeps_delivering(run):
    assert run["reply"] == {"type": "error", "error": "this socket only delivers notifications; "
                                                      "messages from clients are ignored"}
    assert run["ben"]["id"] == "b1"


def test_an_email_reaches_the_smtp_server_once_after_a_busy_answer(run, sink):
    [email] = sink.messages
    assert (email.id, email.recipients, email.subject) == ("m1", ("ana@example.test",), "Welcome")
    [retry] = [decode(r.headers) for r in run["retries"] if _id(r) == "m1"]
    assert retry.error.startswith("TransientError: SMTP answered 451")


def test_an_offline_user_is_retried_then_dead_lettered_with_its_headers(run, topics):
    meta = decode(run["dlt"]["g1"].headers)
    assert (meta.attempts, meta.error_kind, meta.original_topic) == (3, "transient", topics.source)
    assert meta.error == "TransientError: user offline: ghost has no open WebSocket connection"
    retries = sorted(decode(r.headers).attempts for r in run["retries"] if _id(r) == "g1")
    assert retries == [1, 2]


def test_bad_events_go_to_the_dlt_at_once(run):
    unknown, broken = decode(run["dlt"]["x1"].headers), decode(run["dlt"]["bad-json"].headers)
    assert (unknown.attempts, unknown.error_kind) == (1, "fatal")
    assert unknown.error == "FatalError: unknown event type 'sms'; known: email, push"
    assert (broken.attempts, broken.error_kind) == (1, "fatal")
    assert broken.error.startswith("FatalError: bad payload: not UTF-8 JSON")
    assert not {"x1", "bad-json"} & {_id(r) for r in run["retries"]}


def test_stats_count_what_happened(run):
    assert run["connected_stats"]["connected_users"] == 3
    assert run["connected_stats"]["connections"] == 4
    stats = run["stats"]
    assert stats["handled"] == {"email": 1, "push": 3}  # p1 to both of ana's sockets counts once
    assert stats["dead_lettered"] == 3
    assert stats["retried"] == len(run["retries"])


@pytest.mark.parametrize("user", ["bad%20id", "a/b", "u" * 65, "", "%E2%9C%93", "..%2F.."])
def test_a_bad_user_id_is_closed_with_1008_and_the_rule(service, user):
    async def attempt():
        async with connect(ws_url(service, user), open_timeout=10) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            return closed.value.rcvd

    answer = asyncio.run(attempt())
    assert (answer.code, answer.reason) == (1008, RULE)


def test_an_unknown_route_is_json_naming_the_routes(service):
    answer = httpx.get(service.url + "/nope")
    assert answer.status_code == 404
    assert answer.json()["error"] == (
        "no route GET /nope; routes: GET / (the routes), GET /health (the consumer's state), "
        "GET /stats (deliveries, retries, dead letters), WebSocket /ws/{user} (a user's pushes)")


def serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backendlab", "serve", "notifications",
                           "--port", str(processes.free_port()), *args],
                          capture_output=True, text=True, timeout=30, env=env)


def test_more_than_one_worker_is_refused_in_one_line_before_anything_starts():
    done = serve("--topic", "events", "--smtp", "127.0.0.1:25", "--workers", "2")
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: server notifications runs in one process only (its "
                                   "state lives in that process's memory): run it with 1 worker, "
                                   "not 2")
    with pytest.raises(ValueError, match="runs in one process only"):
        start_server("notifications", workers=2, topic="events", smtp="127.0.0.1:25")


def test_a_broker_that_does_not_answer_gets_one_clear_message():
    dead = f"127.0.0.1:{processes.free_port()}"
    done = serve("--topic", "events", "--smtp", "127.0.0.1:25", "--bootstrap", dead)
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"error: Kafka at {dead} does not answer")
    assert "Fix: start the broker (`docker compose up -d kafka`)" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_suite_broker_is_used_when_no_bootstrap_is_given(broker, other_topics, sink):
    with start_server("notifications", topic=other_topics.source, smtp=sink.address,
                      max_attempts=MAX_ATTEMPTS) as server:
        assert httpx.get(server.url + "/health").json()["status"] == "ok"
        assert f"consuming {other_topics.source} on {broker}," in server.process.output()


@pytest.mark.parametrize("args, message", [
    (["--topic", "t", "--smtp", "no-port"], "expected HOST:PORT, got 'no-port'"),
    (["--topic", "t", "--smtp", "h:1", "--max-attempts", "0"],
     "--max-attempts: expected a whole number of at least 1, got '0'"),
    (["--topic", "bad name!", "--smtp", "h:1"], "not a legal Kafka topic name"),
    (["--smtp", "h:1"], "the following arguments are required: --topic"),
])
def test_bad_options_get_an_argparse_error(args, message):
    done = serve(*args)
    assert done.returncode == 2 and message in done.stderr


def test_sigterm_stops_the_consumer_cleanly_with_a_client_connected(broker, other_topics, sink):
    with start_server("notifications", topic=other_topics.source, smtp=sink.address,
                      bootstrap=broker, max_attempts=MAX_ATTEMPTS) as server:
        async def connected():
            socket = await online(server, "ana")
            started = time.monotonic()
            os.killpg(server.pid, signal.SIGTERM)
            await asyncio.to_thread(server.process.popen.wait, 10)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 5)
            return time.monotonic() - started

        took = asyncio.run(connected())
        output = server.process.output()
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status shows it
        assert server.process.popen.returncode == -signal.SIGTERM, output
        assert f"notifications: stopped consuming {other_topics.source}" in output
        assert took < 5 and "Traceback" not in output and "ERROR" not in output, output
