"""Retry and dead-letter topic names follow `<topic>.retry.<n>` / `<topic>.dlt`, each run's topics
are uniquely named, and the topics a run creates are deleted when it ends, also when it fails."""

import asyncio

import pytest

from backendlab.topics.kafkaretry import (RetryTopics, create_topics, dlt_topic, list_topics, retry_topic,
                                          run_topics, unique_topic)
from conftest import kafka_for_tests


def test_names():
    assert retry_topic("orders", 1) == "orders.retry.1"
    assert retry_topic("form-events", 3) == "form-events.retry.3"
    assert dlt_topic("orders") == "orders.dlt"
    assert RetryTopics("orders", 2).all() == ["orders", "orders.retry.1", "orders.retry.2",
                                              "orders.dlt"]
    assert RetryTopics("orders", 0).all() == ["orders", "orders.dlt"]


@pytest.mark.parametrize("bad", ["", "has space", "ünïcode", "a/b", "x" * 250, ".."])
def test_illegal_names_are_refused(bad):
    with pytest.raises(ValueError, match="not a legal Kafka topic name"):
        RetryTopics(bad, 1)


def test_retry_numbers_are_bounded():
    with pytest.raises(ValueError):
        retry_topic("orders", 0)
    with pytest.raises(ValueError, match="has 2 retry topics, not 3"):
        RetryTopics("orders", 2).retry(3)


def test_unique_names_differ_and_keep_the_prefix():
    names = {unique_topic("lab07") for _ in range(100)}
    assert len(names) == 100 and all(n.startswith("lab07-") for n in names)


@pytest.fixture(scope="module")
def bootstrap():
    with kafka_for_tests() as address:
        yield address


def test_a_run_creates_its_topics_and_deletes_them(bootstrap):
    async def scenario():
        # no bootstrap given: the suite's broker
        async with run_topics(prefix="bltest", retries=2) as topics:
            during = await list_topics(bootstrap)
        return topics, during, await list_topics(bootstrap)

    topics, during, after = asyncio.run(scenario())
    assert topics.source.startswith("bltest-")
    assert set(topics.all()) <= during
    assert not set(topics.all()) & after


def test_topics_are_deleted_when_the_run_fails(bootstrap):
    made = []

    async def scenario():
        async with run_topics(bootstrap, "bltest", retries=1) as topics:
            made.extend(topics.all())
            raise RuntimeError("the experiment broke")

    with pytest.raises(RuntimeError, match="the experiment broke"):
        asyncio.run(scenario())
    assert len(made) == 3
    assert not set(made) & asyncio.run(list_topics(bootstrap))


def test_creating_an_existing_topic_is_an_error(bootstrap):
    async def scenario():
        async with run_topics(bootstrap, "bltest", retries=0) as topics:
            await create_topics(bootstrap, [topics.source])

    with pytest.raises(RuntimeError, match="could not create topics"):
        asyncio.run(scenario())
