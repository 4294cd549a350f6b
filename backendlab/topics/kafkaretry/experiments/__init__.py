"""Experiments of notebook 07: Kafka consumer retries, backoff, dead-letter topics, notifications.

1. `handler_errors`: a handler raises; a consumer that swallows loses the message, one that
   crashes is stuck on it (offsets shown).
2. `blocking_vs_retry_topics`: in-place retries hold the partition; retry topics let it flow.
3. `retry_schedule`, `due_time_accuracy`: backoff with and without jitter; due times honoured by
   pausing the retry partition, not by sleeping in the poll loop.
4. `dead_letters`: transient vs fatal, the DLT's metadata headers, a rate-limited replay.
5. `at_least_once`: a consumer process killed between side effect and commit; a Redis dedupe key.
6. `notification_router`: the notification service (email, WebSocket, retry manager), and the
   per-key ordering retry topics break.
7. `rebalance`: partitions and consumers in a group, rebalances seen live.

Every topic goes under a unique per-run name, deleted when the experiment ends (`topics_left`);
every process and server an experiment starts stops with it.
"""

from backendlab.topics.kafkaretry.experiments.at_least_once import at_least_once
from backendlab.topics.kafkaretry.experiments.backoff_schedule import (due_time_accuracy, due_time_figure,
                                                                       retry_schedule, schedule_figure)
from backendlab.topics.kafkaretry.experiments.blocking import blocking_figure, blocking_vs_retry_topics
from backendlab.topics.kafkaretry.experiments.common import topics_left
from backendlab.topics.kafkaretry.experiments.dead_letters import dead_letters, fate_figure
from backendlab.topics.kafkaretry.experiments.handler_errors import handler_errors
from backendlab.topics.kafkaretry.experiments.notifications import delivery_timeline, notification_router
from backendlab.topics.kafkaretry.experiments.rebalance import rebalance, rebalance_figure

__all__ = ["at_least_once", "blocking_figure", "blocking_vs_retry_topics", "dead_letters",
           "delivery_timeline", "due_time_accuracy", "due_time_figure", "fate_figure",
           "handler_errors", "notification_router", "rebalance", "rebalance_figure",
           "retry_schedule", "schedule_figure", "topics_left"]
