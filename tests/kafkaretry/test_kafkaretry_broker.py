"""The retry manager against a real Kafka-protocol broker (embedded Tansu by default): one consumer
reads a source topic and its retry topics; a poison message climbs the retry topics and lands in the
dead-letter topic with its metadata, a bad payload goes there at once, healthy messages are handled
exactly once, every offset is committed, and the run's topics are gone afterwards."""

import asyncio
import json
import time

import pytest

from backendlab.topics.kafkaretry import (Backoff, RetryPolicy, RetryRouter, decode, list_topics,
                                          read_topic, run_topics)
from conftest import kafka_for_tests

POLICY = RetryPolicy(max_attempts=3, backoff=Backoff(base_ms=50, cap_ms=1000, jitter=False))
MESSAGES = [  # (key, value, headers) produced in this order to the one-partition source topic
    (b"u1", json.dumps({"kind": "email", "n": 1}).encode(), []),
    (b"u2", json.dumps({"kind": "poison"}).encode(), [("trace-id", b"t-poison")]),
    (b"u3", json.dumps({"kind": "email", "n": 2}).encode(), []),
    (b"u4", b"{not json", []),
    (b"u5", json.dumps({"kind": "email", "n": 3}).encode(), []),
]
GROUP_JOIN = dict(session_timeout_ms=2000, heartbeat_interval_ms=500)  # ~1 s joins on Tansu


def handler(healthy):
    def handle(message):
        payload = json.loads(message.value)  # the bad payload raises ValueError: fatal
        if payload["kind"] == "poison":
            raise ConnectionError("SES unreachable")
        healthy.append((message.topic, payload["n"]))
    return handle


async def scenario(bootstrap):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    out = {"healthy": [], "routes": []}
    async with run_topics(bootstrap, "bltest", retries=POLICY.retries) as topics:
        out["topics"] = topics
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        consumer = AIOKafkaConsumer(topics.source, topics.retry(1), topics.retry(2),
                                    bootstrap_servers=bootstrap, group_id=topics.source,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    **GROUP_JOIN)
        try:
            for key, value, headers in MESSAGES:
                await producer.send_and_wait(topics.source, value, key=key, headers=headers)
            await consumer.start()
            router = RetryRouter(producer, consumer, topics, POLICY)
            handle, deadline = handler(out["healthy"]), time.monotonic() + 20
            while (len(out["healthy"]) < 3 or sum(r.dead for r in out["routes"]) < 2) \
                    and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        route = await router.process(record, handle)
                        if route:
                            out["routes"].append(route)
            out["committed"] = {t: await consumer.committed(TopicPartition(t, 0))
                                for t in (topics.source, topics.retry(1), topics.retry(2))}
        finally:
            await consumer.stop()
            await producer.stop()
        for topic in (topics.dlt, topics.retry(1), topics.retry(2)):
            out[topic] = await read_topic(bootstrap, topic)
    out["left"] = await list_topics(bootstrap)
    return out


@pytest.fixture(scope="module")
def run():
    """One run of the scenario on the test broker (see conftest.kafka_for_tests)."""
    with kafka_for_tests() as address:
        yield asyncio.run(asyncio.wait_for(scenario(address), 60))


def by_key(records):
    return {r.key: r for r in records}


def test_poison_message_ends_in_the_dlt_after_the_configured_attempts(run):
    topics = run["topics"]
    dlt = by_key(run[topics.dlt])
    assert set(dlt) == {b"u2", b"u4"}
    poison = dlt[b"u2"]
    meta = decode(poison.headers)
    origin = (meta.original_topic, meta.original_partition, meta.original_offset)
    assert origin == (topics.source, 0, 1)
    assert (meta.attempts, meta.error_kind) == (3, "transient")
    assert meta.error == "ConnectionError: SES unreachable"
    assert meta.due_ms is None and meta.first_seen_ms <= meta.failed_at_ms
    assert poison.value == MESSAGES[1][1] and ("trace-id", b"t-poison") in poison.headers


def test_poison_message_climbed_each_retry_topic_with_a_due_time(run):
    topics = run["topics"]
    for n, delay in ((1, 50), (2, 100)):
        [copy] = run[topics.retry(n)]
        meta = decode(copy.headers)
        assert (copy.key, meta.attempts, meta.original_offset) == (b"u2", n, 1)
        assert meta.due_ms - meta.failed_at_ms == delay
    first = decode(run[topics.retry(1)][0].headers)
    final = decode(by_key(run[topics.dlt])[b"u2"].headers)
    assert final.first_seen_ms == first.first_seen_ms
    assert [r.reason for r in run["routes"] if r.metadata.original_offset == 1] == \
        ["retry", "retry", "exhausted"]


def test_fatal_error_goes_straight_to_the_dlt(run):
    topics = run["topics"]
    meta = decode(by_key(run[topics.dlt])[b"u4"].headers)
    assert (meta.attempts, meta.error_kind, meta.original_offset) == (1, "fatal", 3)
    assert meta.error.startswith("JSONDecodeError")
    retried = [r.key for n in (1, 2) for r in run[topics.retry(n)]]
    assert b"u4" not in retried


def test_healthy_messages_are_handled_once_in_order(run):
    assert run["healthy"] == [(run["topics"].source, 1), (run["topics"].source, 2),
                              (run["topics"].source, 3)]


def test_every_offset_is_committed(run):
    topics = run["topics"]
    assert run["committed"] == {topics.source: 5, topics.retry(1): 1, topics.retry(2): 1}


def test_the_runs_topics_are_deleted(run):
    assert not set(run["topics"].all()) & run["left"]
