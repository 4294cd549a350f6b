"""Read a whole topic as it is now, without a consumer group: for showing and checking what a run
left in its retry and dead-letter topics. `read_to` is the loop underneath, shared with `replay`."""

from __future__ import annotations

import asyncio


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
        try:
            found = await asyncio.wait_for(read_to(consumer, partitions, ends), timeout)
        except TimeoutError:
            raise TimeoutError(f"could not read {topic} to its end within {timeout} s") from None
        return [record for tp in partitions for record in found[tp]]
    finally:
        await consumer.stop()


async def read_to(consumer, partitions: list, ends: dict) -> dict:
    """{partition: its records in offset order}, from each partition's position up to its end
    offset in `ends`. It waits as long as that takes: bound it with a timeout."""
    found = {tp: [] for tp in partitions}
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        for tp, batch in (await consumer.getmany(*partitions, timeout_ms=200)).items():
            found[tp].extend(r for r in batch if r.offset < ends[tp])
    return found
