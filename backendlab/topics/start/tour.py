"""Notebook 00's proof that the services are real: a Redis key expiring on its TTL, and messages
through a Kafka topic and back. Every key and topic made here is unique and removed afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from backendlab import plots
from backendlab.services import kafka_bootstrap, redis_client
from backendlab.coroutines import run_coroutine


@dataclass
class TTLWatch:
    """A key's remaining TTL sampled over time; -2 from Redis means the key is gone."""

    ttl: float
    times: list[float] = field(default_factory=list)
    remaining_ms: list[int] = field(default_factory=list)

    @property
    def vanished_after(self) -> float | None:
        """Seconds from SET until the key was first seen gone (None if it never went)."""
        for t, remaining in zip(self.times, self.remaining_ms):
            if remaining == -2:
                return t
        return None

    def plot(self):
        """Remaining TTL over time, with the moment the key disappeared and the TTL set marked."""
        fig, (ax,) = plots.figure(width=7)
        alive = [(t, ms / 1000) for t, ms in zip(self.times, self.remaining_ms) if ms >= 0]
        ax.plot([t for t, _ in alive], [s for _, s in alive], ".-", label="PTTL (s left)")
        if self.vanished_after is not None:
            ax.axvline(self.vanished_after, color=plots.PALETTE[0], linestyle="--",
                       label=f"key gone at {self.vanished_after:.2f} s")
        ax.axvline(self.ttl, color=plots.PALETTE[3], linestyle=":", label=f"TTL set: {self.ttl:g} s")
        ax.set_xlabel("time since SET (s)")
        ax.set_ylabel("seconds left")
        ax.legend()
        return plots.finish(fig, "A Redis key's TTL counting down")


def watch_ttl(ttl: float = 1.0, every: float = 0.05, watch_for: float | None = None) -> TTLWatch:
    """SET a key with a TTL of `ttl` seconds and sample PTTL until `watch_for` seconds have passed."""
    client = redis_client()
    key = f"backendlab:00:ttl:{uuid.uuid4().hex}"
    result = TTLWatch(ttl)
    try:
        start = time.perf_counter()
        client.set(key, "hello", px=int(ttl * 1000))
        while (now := time.perf_counter() - start) < (watch_for or ttl * 1.6):
            result.times.append(now)
            result.remaining_ms.append(client.pttl(key))
            time.sleep(every)
    finally:
        client.delete(key)
        client.close()
    return result


@dataclass
class KafkaRoundTrip:
    """How many keyed messages went into a fresh topic and came back out, and how long it took."""

    produced: int
    consumed: int
    seconds: float
    in_order_per_key: bool


async def _round_trip(bootstrap: str, count: int, keys: int) -> KafkaRoundTrip:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"backendlab-00-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        start = time.perf_counter()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for i in range(count):
                await producer.send(topic, f"{i}".encode(), key=f"user-{i % keys}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        seen: dict[bytes, list[int]] = {}
        try:
            while sum(map(len, seen.values())) < count:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 10)
                for records in batch.values():
                    for record in records:
                        seen.setdefault(record.key, []).append(int(record.value))
        finally:
            await consumer.stop()
        seconds = time.perf_counter() - start
        in_order = all(values == sorted(values) for values in seen.values())
        return KafkaRoundTrip(count, sum(map(len, seen.values())), seconds, in_order)
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def kafka_round_trip(count: int = 300, keys: int = 5) -> KafkaRoundTrip:
    """Produce `count` messages over `keys` keys into a new 3-partition topic and consume them all."""
    return run_coroutine(_round_trip(kafka_bootstrap(), count, keys), timeout=30)
