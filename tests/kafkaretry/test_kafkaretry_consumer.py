"""The retry loop against the test broker: a poison message waits out each backoff in a paused
retry partition while the healthy messages behind it flow, no attempt runs before its due time,
and the poll loop never stalls for the length of a backoff. Without a broker: a rebalance that
takes partitions away mid-batch does not stop the loop."""

import asyncio
import json
import statistics
import time
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from backendlab.topics.kafkaretry import (Backoff, RetryLoop, RetryMetadata, RetryPolicy, RetryRouter,
                                          RetryTopics, decode, encode, read_topic, retry_consumer,
                                          run_topics)
from conftest import kafka_for_tests

DELAY_MS = 600
POLICY = RetryPolicy(max_attempts=3, backoff=Backoff(base_ms=DELAY_MS, cap_ms=5000, jitter=False))


async def scenario(bootstrap):
    from aiokafka import AIOKafkaProducer

    out = {"attempts": [], "healthy": {}}
    async with run_topics(bootstrap, "loop", retries=POLICY.retries) as topics:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            async with retry_consumer(bootstrap, topics) as consumer:
                router = RetryRouter(producer, consumer, topics, POLICY)

                def handle(record):
                    event = json.loads(record.value)
                    if event["poison"]:
                        out["attempts"].append((time.time() * 1000, decode(record.headers)))
                        raise ConnectionError("downstream down")
                    out["healthy"][event["n"]] = time.time() * 1000 - event["sent_ms"]

                async def process(record):
                    return await router.process(record, handle)

                loop = RetryLoop(consumer, topics, process)
                await loop.join()
                running = asyncio.create_task(loop.run(
                    until=lambda: len(out["attempts"]) == 3 and len(out["healthy"]) == 29,
                    timeout=20))
                for n in range(30):  # produced while the loop runs, over 1.5 s
                    body = {"n": n, "poison": n == 0, "sent_ms": time.time() * 1000}
                    await producer.send_and_wait(topics.source, json.dumps(body).encode())
                    await asyncio.sleep(0.05)
                await running
                out["loop"] = loop
            out["dlt"] = await read_topic(bootstrap, topics.dlt)
        finally:
            await producer.stop()
    return out


@pytest.fixture(scope="module")
def run():
    with kafka_for_tests() as address:
        yield asyncio.run(asyncio.wait_for(scenario(address), 60))


def test_no_attempt_runs_before_its_due_time(run):
    for when, meta in run["attempts"][1:]:
        assert when >= meta.due_ms, f"attempt {meta.attempts + 1} ran {meta.due_ms - when:.0f} ms early"
    gaps = [b[0] - a[0] for a, b in zip(run["attempts"], run["attempts"][1:])]
    assert gaps[0] >= DELAY_MS and gaps[1] >= 2 * DELAY_MS


def test_the_paused_partition_does_not_hold_healthy_messages(run):
    # Held behind the poison, a healthy message would wait at least DELAY_MS.
    latencies = run["healthy"].values()
    assert run["loop"].pauses >= 2
    assert max(latencies) < DELAY_MS * 0.9, run["healthy"]
    assert statistics.median(latencies) < DELAY_MS / 4, run["healthy"]


def test_the_poll_loop_never_waits_a_whole_backoff(run):
    assert run["loop"].longest_poll_gap_ms < DELAY_MS * 0.9


def test_the_poison_message_ends_in_the_dlt(run):
    [dead] = run["dlt"]
    meta = decode(dead.headers)
    assert (meta.attempts, meta.original_offset, meta.error_kind) == (3, 0, "transient")


TOPICS = RetryTopics("orders", retries=1)
P0, P1, P2 = (TopicPartition("orders", p) for p in range(3))


def record(tp, offset, headers=()):
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=offset,
                           headers=list(headers), key=None, value=b"{}")


class RebalancingConsumer:
    """Owns P0, P1 and P2 until the first commit on P0: then the group has taken P0 and P2 away,
    and that commit fails as aiokafka's does."""

    def __init__(self, batch):
        self.batch, self.owned, self.commits = batch, {P0, P1, P2}, []

    def subscribe(self, topics, listener=None):
        pass

    def assignment(self):
        return set(self.owned)

    async def getmany(self, timeout_ms):
        batch, self.batch = self.batch, {}
        return batch

    async def commit(self, offsets):
        [(tp, offset)] = offsets.items()
        if tp == P0:
            self.owned -= {P0, P2}
            raise CommitFailedError("the group has already rebalanced")
        self.commits.append((tp.partition, offset))


def test_a_rebalance_mid_batch_drops_the_rest_of_the_lost_partitions_and_carries_on():
    consumer = RebalancingConsumer({P0: [record(P0, n) for n in range(3)],
                                    P1: [record(P1, n) for n in range(2)],
                                    P2: [record(P2, 0)]})
    router, handled = RetryRouter(None, consumer, TOPICS, RetryPolicy(max_attempts=2)), []

    async def process(message):
        return await router.process(message, lambda m: handled.append((m.partition, m.offset)))

    loop = RetryLoop(consumer, TOPICS, process)
    assert asyncio.run(loop.poll_once()) == 2
    assert handled == [(0, 0), (1, 0), (1, 1)]  # P0's offsets 1 and 2 and all of P2: not ours
    assert consumer.commits == [(1, 1), (1, 2)]
    assert loop.commits_lost == 1
    assert asyncio.run(loop.poll_once()) == 0  # still polling


class LosesTheRetryPartition(RebalancingConsumer):
    """Owns the fetched partitions, but its seek finds one gone: the group took it since."""

    def __init__(self, batch):
        super().__init__(batch)
        self.owned = set(batch)

    def seek(self, tp, offset):
        raise IllegalStateError(f"no current assignment for partition {tp}")


def test_a_partition_lost_before_its_record_is_held_is_not_held():
    retry_1 = TopicPartition(TOPICS.retry(1), 0)
    meta = RetryMetadata("orders", 0, 7, 1, "ConnectionError: down", "transient", 0, 0, due_ms=1000)
    consumer = LosesTheRetryPartition({retry_1: [record(retry_1, n, encode(meta)) for n in (0, 1)]})
    processed = []

    async def process(message):
        processed.append(message)

    loop = RetryLoop(consumer, TOPICS, process, clock=lambda: 0)
    assert asyncio.run(loop.poll_once()) == 0
    assert (processed, loop.held, loop.pauses, loop.commits_lost) == ([], {}, 0, 1)
