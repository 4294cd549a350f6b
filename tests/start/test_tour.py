"""Notebook 00's experiments measure what they claim and leave nothing behind."""

import pytest

from backendlab.topics.start import tour
from backendlab.services import redis_client, stop_embedded


@pytest.fixture(autouse=True)
def embedded(clean_service_env):
    clean_service_env.setenv("BACKENDLAB_EMBEDDED", "1")
    yield
    stop_embedded()


def test_key_vanishes_when_its_ttl_ends():
    watch = tour.watch_ttl(ttl=0.5, every=0.02)
    assert 0.5 <= watch.vanished_after <= 0.75
    alive = [ms for ms in watch.remaining_ms if ms != -2]
    assert alive == sorted(alive, reverse=True) and alive[0] <= 500
    assert list(redis_client().scan_iter("backendlab:00:*")) == []


def test_vanished_after_is_none_while_the_key_lives():
    assert tour.TTLWatch(1.0, [0.0, 0.1], [1000, 900]).vanished_after is None


def test_kafka_round_trip_keeps_per_key_order_and_removes_its_topic():
    from aiokafka.admin import AIOKafkaAdminClient

    from backendlab.services import kafka_bootstrap
    from backendlab.coroutines import run_coroutine

    result = tour.kafka_round_trip(count=120, keys=4)
    assert (result.produced, result.consumed, result.in_order_per_key) == (120, 120, True)

    async def topics():
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    assert not [t for t in run_coroutine(topics()) if t.startswith("backendlab-00-")]
