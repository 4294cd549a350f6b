"""Experiments of notebook 07: Kafka consumer retries, backoff, dead-letter topics, notifications.

1. `handler_errors`: a handler raises; a consumer that swallows loses the message, one that
   crashes is stuck on it (offsets shown).
2. `blocking_vs_retry_topics`: in-place retries hold the partition; retry topics let it flow.
3. `retry_schedule`, `due_time_accuracy`: backoff with and without jitter; due times honoured by
   pausing the retry partition, not by sleeping in the poll loop.
4. `dead_letters`: transient vs fatal, the DLT's metadata headers, a rate-limited replay.
5. `at_least_once`: a consumer process killed between side effect and commit; a Redis dedupe key.
6. `notification_router`: the notification service (email, WebSocket, retry manager), and the
   per-key ordering retry topics break; `email_throttling`: the provider's throttle answers
   (421) retried until every email is delivered, a 550 dead-lettered at once.
7. `rebalance`: partitions and consumers in a group, rebalances seen live.

Each returns a result with `summary()` and `plot()`, the figure the notebook shows. Every topic
goes under a unique per-run name, deleted when the experiment ends (`topics_left`); every process
and server an experiment starts stops with it.
"""

from backendlab.topics.kafkaretry.experiments.at_least_once import at_least_once
from backendlab.topics.kafkaretry.experiments.backoff_schedule import due_time_accuracy, retry_schedule
from backendlab.topics.kafkaretry.experiments.blocking import blocking_vs_retry_topics
from backendlab.topics.kafkaretry.experiments.common import topics_left
from backendlab.topics.kafkaretry.experiments.dead_letters import dead_letters
from backendlab.topics.kafkaretry.experiments.email_throttling import email_throttling
from backendlab.topics.kafkaretry.experiments.handler_errors import handler_errors
from backendlab.topics.kafkaretry.experiments.notifications import notification_router
from backendlab.topics.kafkaretry.experiments.rebalance import rebalance

__all__ = ["at_least_once", "blocking_vs_retry_topics", "dead_letters", "due_time_accuracy",
           "email_throttling", "handler_errors", "notification_router", "rebalance", "retry_schedule", "topics_left"]
