"""The retry loop against the test broker: a poison message waits out each backoff in a paused
retry partition while the healthy messages behind it flow, no attempt runs before its due time,
and the poll loop never stalls for the length of a backoff."""

import asyncio
import json
import time

import pytest

from backendlab.kafkaretry import (Backoff, RetryLoop, RetryPolicy, RetryRouter, decode,
                                   read_topic, retry_consumer, run_topics)
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
    assert run["loop"].pauses >= 2
    assert max(run["healthy"].values()) < DELAY_MS / 2, run["healthy"]


def test_the_poll_loop_never_waits_a_whole_backoff(run):
    assert run["loop"].longest_poll_gap_ms < DELAY_MS / 2


def test_the_poison_message_ends_in_the_dlt(run):
    [dead] = run["dlt"]
    meta = decode(dead.headers)
    assert (meta.attempts, meta.original_offset, meta.error_kind) == (3, 0, "transient")
