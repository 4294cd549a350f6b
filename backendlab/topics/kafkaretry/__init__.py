"""Topic 07, Kafka consumer retries: retry and dead-letter topics, backoff, error kinds, metadata
headers; the notification service built on them (`notifications`, served by `server`), the
experiments of notebook 07 (`experiments`), lab 07's checks and the question bank.

    from backendlab.topics.kafkaretry import RetryPolicy, RetryRouter, run_topics
    async with run_topics(bootstrap, "orders", retries=2) as topics:
        router = RetryRouter(producer, consumer, topics, RetryPolicy(max_attempts=3))
        route = await router.process(record, handler)  # None, or where the failure went

One concept per module: `topics` (names, create and always delete), `backoff` (exponential, capped,
full jitter), `errors` (transient or fatal), `headers` (the metadata a copy carries), `router`
(decide, publish, then commit), `consumer` (the poll loop that pauses a retry partition until its
head is due), `reading` (a topic's records), `replay` (dead letters back to their topic,
rate-limited; also `backendlab kafka-replay`), `producer` (a started producer for a
block), `quiet` (muting aiokafka's log for a block).
"""

from backendlab.topics.kafkaretry.backoff import Backoff, exponential_ms, full_jitter_ms
from backendlab.topics.kafkaretry.errors import FatalError, Kind, TransientError, classify
from backendlab.topics.kafkaretry.consumer import RetryLoop, due_ms, retry_consumer
from backendlab.topics.kafkaretry.headers import RetryMetadata, decode, encode, with_metadata
from backendlab.topics.kafkaretry.reading import read_topic
from backendlab.topics.kafkaretry.router import RetryPolicy, RetryRouter, Route, decide
from backendlab.topics.kafkaretry.topics import (RetryTopics, create_topics, delete_topics, dlt_topic,
                                                 list_topics, retry_topic, run_topics, unique_topic)

__all__ = [
    "Backoff", "FatalError", "Kind", "RetryLoop", "RetryMetadata", "RetryPolicy", "RetryRouter",
    "RetryTopics", "Route", "TransientError", "classify", "create_topics", "decide", "decode",
    "delete_topics", "dlt_topic", "due_ms", "encode", "exponential_ms", "full_jitter_ms",
    "list_topics", "read_topic", "retry_consumer", "retry_topic", "run_topics", "unique_topic",
    "with_metadata",
]
