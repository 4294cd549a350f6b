"""Read a whole topic as it is now, without a consumer group: for showing and checking what a run
left in its retry and dead-letter topics."""

from __future__ import annotations

import time


async def read_topic(bootstrap: str, topic: str, timeout: float = 10.0) -> list:
    """Every record of every partition of `topic`, up to the end offsets at the time of the call,
    in (partition, offset) order. Raises TimeoutError if the broker does not deliver them."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    try:
        if topic not in await consumer.topics():  # also fetches the partitions' metadata
            raise ValueError(f"topic {topic} does not exist")
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records, deadline = [], time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout} s")
            for batch in (await consumer.getmany(*partitions, timeout_ms=200)).values():
                records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()

