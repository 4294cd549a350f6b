"""The retry manager's decision and its commit discipline, without a broker: fatal errors go to the
dead-letter topic at once, transient ones climb the retry topics with a due time, then dead-letter;
and a failed record's offset is committed only after its copy is acknowledged."""

import asyncio
import random
from types import SimpleNamespace

import pytest

from backendlab.topics.kafkaretry import (Backoff, FatalError, RetryPolicy, RetryRouter, RetryTopics,
                                          decide, decode, with_metadata)

TOPICS = RetryTopics("orders", retries=2)
POLICY = RetryPolicy(max_attempts=3, backoff=Backoff(base_ms=100, cap_ms=1000, jitter=False))


def record(topic="orders", partition=0, offset=7, headers=(), value=b"{}", key=b"user-1"):
    return SimpleNamespace(topic=topic, partition=partition, offset=offset, headers=tuple(headers),
                           value=value, key=key)


def copy_of(message, route, offset):
    """The record the router's copy becomes in its destination topic."""
    return record(route.topic, 0, offset, with_metadata(message.headers, route.metadata),
                  message.value, message.key)


def test_first_transient_failure_goes_to_retry_1_with_a_due_time():
    route = decide(record(), ConnectionError("SES down"), TOPICS, POLICY, now_ms=10_000)
    assert (route.topic, route.reason, route.dead) == ("orders.retry.1", "retry", False)
    meta = route.metadata
    assert (meta.original_topic, meta.original_partition, meta.original_offset) == ("orders", 0, 7)
    assert (meta.attempts, meta.error_kind) == (1, "transient")
    assert meta.error == "ConnectionError: SES down"
    assert (meta.first_seen_ms, meta.failed_at_ms, meta.due_ms) == (10_000, 10_000, 10_100)


def test_transient_failures_climb_the_retry_topics_then_dead_letter():
    message, now, seen = record(), 10_000, []
    for offset in range(3):
        route = decide(message, TimeoutError("slow"), TOPICS, POLICY, now_ms=now)
        seen.append((route.topic, route.reason, route.metadata.attempts, route.metadata.due_ms))
        message, now = copy_of(message, route, offset), now + 1000
    assert seen == [("orders.retry.1", "retry", 1, 10_100), ("orders.retry.2", "retry", 2, 11_200),
                    ("orders.dlt", "exhausted", 3, None)]
    final = decode(message.headers)
    assert (final.original_topic, final.original_offset) == ("orders", 7)
    assert (final.first_seen_ms, final.failed_at_ms) == (10_000, 12_000)


def test_fatal_error_goes_to_the_dead_letter_topic_at_once():
    route = decide(record(), FatalError("unknown event type"), TOPICS, POLICY, now_ms=5)
    assert (route.topic, route.reason, route.metadata.attempts) == ("orders.dlt", "fatal", 1)
    assert route.metadata.error_kind == "fatal" and route.metadata.due_ms is None


def test_fatal_on_a_retry_keeps_the_origin():
    first = decide(record(offset=3), ConnectionError(), TOPICS, POLICY, now_ms=1)
    route = decide(copy_of(record(offset=3), first, 0), ValueError("bad"), TOPICS, POLICY, now_ms=2)
    assert (route.topic, route.reason, route.metadata.attempts) == ("orders.dlt", "fatal", 2)
    assert (route.metadata.original_offset, route.metadata.first_seen_ms) == (3, 1)


def test_one_attempt_policy_dead_letters_the_first_failure():
    route = decide(record(), ConnectionError(), TOPICS, RetryPolicy(max_attempts=1), now_ms=0)
    assert route.reason == "exhausted"


def test_jittered_due_time_is_within_the_ceiling_and_seeded():
    policy = RetryPolicy(max_attempts=3, backoff=Backoff(base_ms=1000, cap_ms=60_000))
    dues = [decide(record(), TimeoutError(), TOPICS, policy, 0, random.Random(s)).metadata.due_ms
            for s in range(50)]
    assert all(0 <= due <= 1000 for due in dues) and len(set(dues)) > 10
    again = decide(record(), TimeoutError(), TOPICS, policy, 0, random.Random(0)).metadata.due_ms
    assert again == dues[0]


def test_router_refuses_too_few_retry_topics():
    with pytest.raises(ValueError, match="need 3 retry topics"):
        RetryRouter(None, None, RetryTopics("orders", 2), RetryPolicy(max_attempts=4))


class SlowAckProducer:
    """A producer whose acknowledgement arrives only when the test says so (or fails)."""

    def __init__(self, log, fail=False):
        self.log, self.fail, self.ack = log, fail, asyncio.Event()

    async def send_and_wait(self, topic, value, key=None, headers=None):
        self.log.append(("sent", topic))
        await self.ack.wait()
        if self.fail:
            raise ConnectionError("broker gone")
        self.log.append(("acked", topic))


class RecordingConsumer:
    def __init__(self, log):
        self.log = log

    async def commit(self, offsets):
        self.log.append(("commit", {(tp.topic, tp.partition): o for tp, o in offsets.items()}))


def test_commit_waits_for_the_acknowledgement():
    async def scenario():
        log = []
        producer = SlowAckProducer(log)
        router = RetryRouter(producer, RecordingConsumer(log), TOPICS, POLICY, clock=lambda: 0)
        task = asyncio.create_task(router.route(record(offset=7), ConnectionError()))
        await asyncio.sleep(0.05)
        before_ack = list(log)
        producer.ack.set()
        await task
        return before_ack, log

    before_ack, log = asyncio.run(scenario())
    assert before_ack == [("sent", "orders.retry.1")]
    assert log == [("sent", "orders.retry.1"), ("acked", "orders.retry.1"),
                   ("commit", {("orders", 0): 8})]


def test_a_failed_publish_commits_nothing():
    async def scenario():
        log = []
        producer = SlowAckProducer(log, fail=True)
        producer.ack.set()
        router = RetryRouter(producer, RecordingConsumer(log), TOPICS, POLICY)
        with pytest.raises(ConnectionError):
            await router.route(record(), FatalError("bad"))
        return log

    assert asyncio.run(scenario()) == [("sent", "orders.dlt")]


def test_process_commits_successes_and_routes_failures_of_sync_and_async_handlers():
    async def scenario():
        log = []
        producer = SlowAckProducer(log)
        producer.ack.set()
        router = RetryRouter(producer, RecordingConsumer(log), TOPICS, POLICY)

        async def async_fails(message):
            raise KeyError("email")

        ok = await router.process(record(offset=1), lambda m: None)
        failed = await router.process(record(offset=2), async_fails)
        return ok, failed, log

    ok, failed, log = asyncio.run(scenario())
    assert ok is None and failed.reason == "fatal"
    assert log == [("commit", {("orders", 0): 2}), ("sent", "orders.dlt"), ("acked", "orders.dlt"),
                   ("commit", {("orders", 0): 3})]


@pytest.mark.parametrize("headers", [[("x-retry-attempts", b"three")],
                                     [("x-retry-original-topic", b"orders")]])
def test_undecodable_retry_headers_dead_letter_the_record_as_fatal(headers):
    message = record(topic="orders.retry.1", partition=2, offset=9, headers=headers)
    route = decide(message, ConnectionError("down"), TOPICS, POLICY, now_ms=50)
    assert (route.topic, route.reason) == ("orders.dlt", "fatal")
    meta = route.metadata
    assert (meta.original_topic, meta.original_partition, meta.original_offset) == \
        ("orders.retry.1", 2, 9)
    assert (meta.attempts, meta.error_kind, meta.due_ms, meta.first_seen_ms) == \
        (1, "fatal", None, 50)
    assert meta.error.startswith("malformed retry headers (retry header x-retry-")
    assert meta.error.endswith("the handler raised ConnectionError: down")
    assert decode(with_metadata(message.headers, meta)) == meta  # the copy's headers decode
