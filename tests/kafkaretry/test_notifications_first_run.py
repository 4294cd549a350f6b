"""The notification service on a learner's first run: with no Kafka configured it starts a broker
of its own, prints its address, creates the topics, answers /health and `GET /`, and takes the
broker down with it; on a broker that lacks some topics it creates just those."""

import asyncio
import re
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from backendlab import processes
from backendlab.topics.kafkaretry import RetryTopics, create_topics, delete_topics, list_topics
from backendlab.servers import start_server
from conftest import blank_service_env, kafka_for_tests

EMBEDDED = re.compile(r"started an embedded one at (127\.0\.0\.1:\d+) \(it stops with the server\)")


def wait_healthy(url: str, proc: processes.ManagedProcess, timeout: float = 30) -> None:
    """Poll `url` until it answers 200; fail with the server's output if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.alive():
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer 200 within {timeout}s:\n{proc.output()}")


def brokers_under(pid: int) -> list[psutil.Process]:
    """The Tansu processes among the descendants of `pid`."""
    return [child for child in psutil.Process(pid).children(recursive=True)
            if "tansu" in " ".join(child.cmdline()[:1])]


@pytest.fixture
def first_run(monkeypatch, unique):
    """`serve notifications` as the README gives it, on a machine with no Kafka configured."""
    blank_service_env(monkeypatch)
    port = processes.free_port()
    argv = [sys.executable, "-m", "backendlab", "serve", "notifications", "--port", str(port),
            "--topic", unique, "--smtp", f"127.0.0.1:{processes.free_port()}"]
    with processes.start("server-notifications", argv, port=port) as proc:
        proc.wait_for_port(30)
        wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        yield proc, f"http://127.0.0.1:{port}", RetryTopics(unique, 3)


def test_with_no_kafka_configured_it_runs_its_own_broker_and_creates_the_topics(first_run):
    proc, url, topics = first_run
    output = proc.output(limit=None)
    found = EMBEDDED.search(output)
    assert found, output
    broker = found.group(1)
    assert f"produce your events to bootstrap_servers='{broker}'" in output
    assert f"created topics {', '.join(topics.all())} on {broker}" in output
    assert f"notifications: serving {url} with routes GET / (the routes)" in output
    assert set(topics.all()) <= asyncio.run(list_topics(broker))
    [tansu] = brokers_under(proc.pid)
    assert broker in " ".join(tansu.cmdline())

    proc.stop()
    _, alive = psutil.wait_procs([tansu], timeout=10)
    host, port = broker.split(":")
    assert alive == [] and not processes.port_open(host, int(port))


def test_its_index_names_the_routes_and_the_topics(first_run):
    proc, url, topics = first_run
    answer = httpx.get(url + "/")
    assert answer.status_code == 200
    body = answer.json()
    assert list(body["routes"]) == ["GET /", "GET /health", "GET /stats", "WebSocket /ws/{user}"]
    assert body["consumes"] == [topics.source, *topics.retry_names]
    assert body["dead_letters"] == topics.dlt
    assert body["bootstrap"] == EMBEDDED.search(proc.output(limit=None)).group(1)


@pytest.fixture(scope="module")
def broker():
    with kafka_for_tests() as address:
        yield address


def test_only_the_missing_topics_are_created_and_named(broker, unique):
    topics = RetryTopics(unique, 1)
    asyncio.run(create_topics(broker, [topics.source]))
    try:
        options = dict(topic=topics.source, smtp=f"127.0.0.1:{processes.free_port()}",
                       bootstrap=broker, max_attempts=2)
        with start_server("notifications", **options) as server:
            output = server.process.output()
        assert f"created topics {topics.retry(1)}, {topics.dlt} on {broker}" in output, output
        assert "embedded" not in output
        assert set(topics.all()) <= asyncio.run(list_topics(broker))
        with start_server("notifications", **options) as server:
            assert "created topics" not in server.process.output()
    finally:
        asyncio.run(delete_topics(broker, topics.all()))


def test_a_configured_kafka_that_is_down_is_one_line_with_the_fix(monkeypatch):
    blank_service_env(monkeypatch)
    dead = f"127.0.0.1:{processes.free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", dead)
    done = subprocess.run([sys.executable, "-m", "backendlab", "serve", "notifications",
                           "--port", str(processes.free_port()), "--topic", "events",
                           "--smtp", "127.0.0.1:25"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"error: Kafka: KAFKA_BOOTSTRAP_SERVERS={dead} does "
                                          "not answer")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
