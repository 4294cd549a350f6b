"""A started aiokafka producer for one `async with` block, stopped on the way out even on error."""

from __future__ import annotations

import contextlib


@contextlib.asynccontextmanager
async def producer(bootstrap: str, **options):
    """A started AIOKafkaProducer for `bootstrap` (extra aiokafka `options` passed on)."""
    from aiokafka import AIOKafkaProducer

    started = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
