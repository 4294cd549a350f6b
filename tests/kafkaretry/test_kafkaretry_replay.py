"""Replaying a dead-letter topic: each record goes back to its original topic (or `to`) with the
same key, value and own headers, the retry metadata swapped for replay headers; copies are paced at
the rate asked for; a replay that ran is not repeated; bad input is refused before anything moves;
the timeout bounds the whole run; the CLI needs a broker that can hold the DLT."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backendlab.topics.kafkaretry import RetryMetadata, encode, read_topic, run_topics
from backendlab.topics.kafkaretry.replay import (AT_HEADER, FROM_HEADER, Moved, Pacer, ReplayReport,
                                                 check_arguments, destination, replay, replay_headers)
from backendlab.services.kafka import service
from conftest import kafka_for_tests

COUNT, RATE = 20, 40.0


def dead_letter_headers(source: str, offset: int) -> list:
    meta = RetryMetadata(original_topic=source, original_partition=0, original_offset=offset,
                         attempts=3, error="ConnectionError: down", error_kind="transient",
                         first_seen_ms=1_000, failed_at_ms=2_000)
    return [("trace-id", f"t{offset}".encode()), ("null-value", None), *encode(meta)]


async def produce(bootstrap, topic, records):
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def committed(bootstrap, topic, group):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def scenario(bootstrap):
    out = {}
    async with run_topics(bootstrap, "bltest-replay", retries=0) as topics, \
            run_topics(bootstrap, "bltest-plain", retries=0) as plain:
        out["topics"], out["plain"] = topics, plain
        await produce(bootstrap, topics.dlt, [
            (f"k{n}".encode(), f"v{n}".encode(), dead_letter_headers(topics.source, n))
            for n in range(COUNT)])
        await produce(bootstrap, plain.dlt, [(b"bare", b"no metadata", [("trace-id", b"x")])])
        out["first"] = await replay(bootstrap, topics.dlt, rate_per_s=RATE)
        out["second"] = await replay(bootstrap, topics.dlt, rate_per_s=RATE)
        out["limited"] = await replay(bootstrap, topics.dlt, rate_per_s=200, limit=5,
                                      group="another-group", to=plain.source)
        out["copies"] = await read_topic(bootstrap, topics.source)
        out["redirected"] = await read_topic(bootstrap, plain.source)
        for name, call in {
                "no-dlt": replay(bootstrap, topics.dlt + "-nope"),
                "no-origin": replay(bootstrap, plain.dlt, rate_per_s=50),
                "no-destination": replay(bootstrap, topics.dlt, to="bltest-missing-topic",
                                         group="third-group")}.items():
            try:
                await call
            except ValueError as exc:
                out[name] = str(exc)
        out["plain-committed"] = await committed(bootstrap, plain.dlt, f"{plain.dlt}.replay")
        out["plain-after"] = await read_topic(bootstrap, plain.source)
        out["fixed"] = await replay(bootstrap, plain.dlt, rate_per_s=50, to=plain.source)
        out["timed-out"] = await timed_out(bootstrap, topics.dlt)
        out["cli"] = await asyncio.to_thread(cli, "--dlt", topics.dlt, "--group", "cli-group",
                                             "--rate", "100", "--limit", "3",
                                             "--bootstrap", bootstrap)
        # No --bootstrap: the embedded broker a parent process (a notebook's kernel) shares.
        out["cli-missing"] = await asyncio.to_thread(
            cli, "--dlt", "bltest-no-such.dlt", **{service.shared_var: bootstrap})
    return out


async def timed_out(bootstrap, dlt):
    """A replay paced at 4 a second with a 1 s timeout: what it said, moved and committed."""
    started = time.monotonic()
    try:
        await replay(bootstrap, dlt, rate_per_s=4, group="slow-group", timeout=1.0)
    except TimeoutError as exc:
        return {"error": str(exc), "seconds": time.monotonic() - started,
                "committed": await committed(bootstrap, dlt, "slow-group")}
    return {"error": None}


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI in an environment that names no broker, plus `env`."""
    blank = {name: value for name, value in os.environ.items()
             if name not in ("KAFKA_BOOTSTRAP_SERVERS", service.shared_var, "BACKENDLAB_EMBEDDED")}
    blank["BACKENDLAB_CONFIG"] = str(Path(__file__).with_name("no-such-backendlab.env"))
    return subprocess.run([sys.executable, "-m", "backendlab", "kafka-replay", *args],
                          capture_output=True, text=True, timeout=60, env=blank | env)


@pytest.fixture(scope="module")
def run():
    with kafka_for_tests() as address:
        yield asyncio.run(asyncio.wait_for(scenario(address), 90))


def test_every_record_goes_back_to_its_original_topic_once(run):
    topics, first = run["topics"], run["first"]
    assert len(first.moved) == COUNT and first.already_replayed == 0 and first.remaining == 0
    assert [m.source for m in first.moved] == [f"{topics.dlt}:0:{n}" for n in range(COUNT)]
    assert [m.destination for m in first.moved] == [f"{topics.source}:0:{n}" for n in range(COUNT)]
    assert [(r.key, r.value) for r in run["copies"]] == \
        [(f"k{n}".encode(), f"v{n}".encode()) for n in range(COUNT)]


def test_copies_carry_replay_headers_and_their_own_not_the_retry_metadata(run):
    for n, copy in enumerate(run["copies"]):
        headers = dict(copy.headers)
        assert headers["trace-id"] == f"t{n}".encode() and headers["null-value"] is None
        assert headers[FROM_HEADER] == f"{run['topics'].dlt}:0:{n}".encode()
        assert abs(int(headers[AT_HEADER]) - time.time() * 1000) < 60_000
        assert not [name for name in headers if name.startswith("x-retry-")]


def test_copies_are_paced_at_the_rate(run):
    first = run["first"]
    assert first.send_times[-1] - first.send_times[0] >= (COUNT - 1) / RATE * 0.95
    assert first.measured_rate() <= RATE * 1.05
    assert first.busiest_second() <= RATE + 1
    assert first.send_times[1] - first.send_times[0] >= 0.95 / RATE  # no burst at the start


def test_a_second_replay_moves_nothing(run):
    second = run["second"]
    assert second.moved == [] and second.already_replayed == COUNT
    assert len(run["copies"]) == COUNT


def test_limit_and_to_and_a_group_of_its_own(run):
    limited = run["limited"]
    assert (len(limited.moved), limited.remaining, limited.already_replayed) == (5, COUNT - 5, 0)
    assert [r.key for r in run["redirected"]] == [f"k{n}".encode() for n in range(5)]


def test_a_missing_dlt_is_named_with_the_ones_that_exist(run):
    assert "does not exist" in run["no-dlt"] and run["topics"].dlt in run["no-dlt"]


def test_a_record_without_origin_stops_the_replay_before_anything_moves(run):
    assert "no original topic" in run["no-origin"] and "to=TOPIC" in run["no-origin"]
    assert run["plain-committed"] is None and len(run["plain-after"]) == 5  # only `limited`'s
    fixed = run["fixed"]
    assert len(fixed.moved) == 1 and fixed.moved[0].destination.startswith(run["plain"].source)


def test_a_missing_destination_topic_is_refused(run):
    assert "bltest-missing-topic does not exist" in run["no-destination"]


def test_the_timeout_bounds_the_whole_replay_and_keeps_what_moved(run):
    result = run["timed-out"]
    assert result["error"] is not None and "ran out of time" in result["error"]
    moved = int(result["error"].split("after moving ")[1].split()[0])
    assert moved < COUNT and (result["committed"] or 0) == moved
    assert result["seconds"] < 6  # its timeout is 1 s: the replay stops near it, not at the end


def test_cli_prints_each_moved_record_and_a_total(run):
    done, dlt = run["cli"], run["topics"].dlt
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines[:3]] == [f"{dlt}:0:{n}" for n in range(3)]
    assert lines[3].startswith(f"replayed 3 records from {dlt}")
    assert "17 left by --limit" in lines[3]


def test_cli_missing_dlt_exits_2_with_one_line(run):
    done = run["cli-missing"]
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr


def test_cli_bad_rate_exits_2_without_a_broker():
    done = cli("--dlt", "x.dlt", "--rate", "0", "--bootstrap", "127.0.0.1:1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("backendlab kafka-replay: error: rate must be more "
                                   "than 0 records per second, got 0.0; try 10 (the default)")


def test_cli_bad_timeout_exits_2_without_a_broker():
    done = cli("--dlt", "x.dlt", "--timeout", "0", "--bootstrap", "127.0.0.1:1")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "timeout must be more than 0 seconds, got 0.0" in done.stderr


@pytest.mark.parametrize("forced_embedded", [{}, {"BACKENDLAB_EMBEDDED": "1"}])
def test_cli_without_a_named_broker_refuses_rather_than_start_an_empty_one(forced_embedded):
    done = cli("--dlt", "orders.dlt", **forced_embedded)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "pass --bootstrap HOST:PORT or set KAFKA_BOOTSTRAP_SERVERS" in done.stderr


@pytest.mark.parametrize("rate, limit, timeout, message", [
    (0, None, None, "rate must be more than 0"), (-1, None, None, "rate must be more than 0"),
    (10, -1, None, "limit must be 0 or more"), (10, None, 0, "timeout must be more than 0"),
    (10, None, -5, "timeout must be more than 0")])
def test_bad_arguments(rate, limit, timeout, message):
    with pytest.raises(ValueError, match=message):
        check_arguments(rate, limit, timeout)


def test_bad_timeout_is_refused_before_connecting():
    with pytest.raises(ValueError, match="timeout must be more than 0"):
        asyncio.run(replay("127.0.0.1:1", "orders.dlt", timeout=0))


def test_replay_headers_replace_retry_and_older_replay_headers():
    headers = [("trace-id", b"t"), ("x-retry-attempts", b"3"), (FROM_HEADER, b"old:0:1"),
               (AT_HEADER, b"1"), ("null-value", None)]
    assert replay_headers(headers, "orders.dlt:0:7", 99) == [
        ("trace-id", b"t"), ("null-value", None), (FROM_HEADER, b"orders.dlt:0:7"),
        (AT_HEADER, b"99")]


class Record:
    topic, partition, offset = "orders.dlt", 0, 7

    def __init__(self, headers):
        self.headers = headers


def test_destination_is_to_or_the_original_topic():
    record = Record(dead_letter_headers("orders", 7))
    assert destination(record, None) == "orders"
    assert destination(record, "elsewhere") == "elsewhere"
    for headers in ([], [("x-retry-attempts", b"3")]):
        with pytest.raises(ValueError, match="orders.dlt:0:7 has no original topic"):
            destination(Record(headers), None)


def test_pacer_spaces_sends_evenly_from_the_first():
    async def times():
        pacer = Pacer(100)
        return [await pacer.wait() for _ in range(6)]

    sent = asyncio.run(times())
    assert all(b - a >= 0.0095 for a, b in zip(sent, sent[1:]))


def test_rate_measures():
    moved = [Moved(f"d:0:{n}", "s:0:0", None, n / 4) for n in range(9)]
    report = ReplayReport("d", "g", 4.0, moved)
    assert report.measured_rate() == pytest.approx(4.0)
    assert report.busiest_second() == 5
    assert report.summary()["moved"] == 9
