"""Experiment 2: a poison message retried in place blocks the healthy messages behind it; sent to
retry topics, it waits there and they flow.

Both modes read the same stream at the same time (one producer writes each message to both source
topics at once), with the same backoff and the same number of attempts:

- "blocking": the consumer retries the failed record where it is, sleeping the backoff between
  attempts, then dead-letters it; nothing behind it on the partition is handled meanwhile;
- "retry topics": `RetryRouter` copies the failure to `<topic>.retry.<n>` with a due time and
  commits it, `RetryLoop` keeps polling and holds each retry partition until its head is due.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from aiokafka import TopicPartition

from backendlab import plots
from backendlab.topics.kafkaretry.experiments.common import (all_or_none, bootstrap, producer, run,
                                                             run_topics)
from backendlab.topics.kafkaretry import (Backoff, Kind, RetryLoop, RetryMetadata, RetryPolicy,
                                          RetryRouter, decode, read_topic, retry_consumer, with_metadata)
from backendlab.topics.kafkaretry.consumer import until_assigned
from backendlab.topics.kafkaretry.errors import describe
from backendlab.topics.kafkaretry.router import now_ms
from backendlab.measure import percentiles

MODES = ("blocking", "retry topics")
BACKOFF = Backoff(base_ms=200, cap_ms=2000, jitter=False)


class DownstreamDown(ConnectionError):
    """What the poison message's handler raises every time: a transient failure."""


def poison_positions(total: int, poison: int) -> list[int]:
    """Message numbers of the poison messages: spread evenly over the first fifth of the stream."""
    return [int(total * 0.2 * (k + 0.5) / poison) for k in range(poison)]


class InPlaceRetries:
    """The blocking consumer: a failed record is retried where it is, sleeping the backoff between
    attempts, then dead-lettered; the partition behind it waits. Commits after each record."""

    def __init__(self, consumer, producer, topics, policy: RetryPolicy, handler):
        self.consumer, self.producer, self.topics = consumer, producer, topics
        self.policy, self.handler = policy, handler
        self.dead_lettered = 0
        consumer.subscribe([topics.source])

    async def poll_once(self) -> None:
        for tp, records in (await self.consumer.getmany(timeout_ms=100)).items():
            for record in records:
                await self.handle(record)
                await self.consumer.commit({tp: record.offset + 1})

    async def handle(self, record) -> None:
        first_failed = None
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                self.handler(record)
                return
            except Exception as exc:
                failed_at = now_ms()
                first_failed = first_failed or failed_at
                kind = Kind(self.policy.classify(exc))
                if kind is Kind.FATAL or attempt == self.policy.max_attempts:
                    meta = RetryMetadata(
                        original_topic=record.topic, original_partition=record.partition,
                        original_offset=record.offset, attempts=attempt, error=describe(exc),
                        error_kind=kind.value, first_seen_ms=first_failed, failed_at_ms=failed_at)
                    await self.dead_letter(record, meta)
                    return
                await asyncio.sleep(self.policy.backoff.delay_ms(attempt) / 1000)

    async def dead_letter(self, record, meta: RetryMetadata) -> None:
        await self.producer.send_and_wait(self.topics.dlt, record.value, key=record.key,
                                          headers=with_metadata(record.headers, meta))
        self.dead_lettered += 1

    async def run(self, until, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the blocking consumer did not finish within {timeout} s")
            await self.poll_once()


@dataclass
class DeadLetter:
    """A poison message as found in a dead-letter topic."""

    n: int
    attempts: int
    error_kind: str


@dataclass
class BlockingRun:
    """Healthy-message latency, source-partition lag and dead letters, for each mode."""

    healthy: int
    poison: list[int]  # message numbers of the poison messages
    backoff: Backoff
    max_attempts: int
    sent_s: dict[int, float]  # message number -> when it was produced (s from the first send)
    latency_ms: dict[str, dict[int, float]]  # mode -> healthy message number -> produce to handled
    lag: dict[str, list[tuple[float, int]]]  # mode -> (s from the first send, lag in messages)
    dead: dict[str, list[DeadLetter]]
    seconds: float  # wall time of the whole experiment, topics created to deleted

    def percentile_ms(self, mode: str, p: float = 50) -> float:
        return percentiles(self.latency_ms[mode].values(), (p,))[p]

    def speedup(self, p: float = 50) -> float:
        """How many times lower the retry-topic mode's p-th percentile latency is. The median by
        default: in place, nearly every healthy message behind a poison waits, so the effect sits
        in the middle of the distribution, and the median ignores the few retry-topic messages a
        busy machine happens to delay."""
        return self.percentile_ms("blocking", p) / self.percentile_ms("retry topics", p)

    @property
    def max_lag(self) -> dict[str, int]:
        return {mode: max(lag for _, lag in samples) for mode, samples in self.lag.items()}

    @property
    def final_lag(self) -> dict[str, int]:
        return {mode: samples[-1][1] for mode, samples in self.lag.items()}

    @property
    def dead_attempts(self) -> dict[str, list[int]]:
        """Attempts each dead-lettered poison message had, per mode."""
        return {mode: [d.attempts for d in dead] for mode, dead in self.dead.items()}

    def summary(self) -> dict:
        return {mode: {"healthy handled": len(self.latency_ms[mode]),
                       "latency p50 ms": round(self.percentile_ms(mode, 50)),
                       "latency p90 ms": round(self.percentile_ms(mode, 90)),
                       "max lag": self.max_lag[mode], "final lag": self.final_lag[mode],
                       "dead-lettered after attempts": self.dead_attempts[mode]}
                for mode in MODES} | {"p50 speedup": round(self.speedup(50), 1),
                                      "seconds": round(self.seconds, 1)}

    def plot(self):
        """Left: each healthy message's latency by when it was sent; right: lag over time."""
        fig, (left, right) = plots.figure(ncols=2, width=11)
        for mode, colour in zip(MODES, plots.PALETTE):
            numbers = sorted(self.latency_ms[mode])
            left.plot([self.sent_s[n] for n in numbers],
                      [self.latency_ms[mode][n] for n in numbers], ".", markersize=4, color=colour,
                      label=mode)
            times, lags = zip(*self.lag[mode])
            right.plot(times, lags, drawstyle="steps-post", color=colour, label=mode)
        for n in self.poison:
            left.axvline(self.sent_s[n], color=plots.PALETTE[5], linestyle=":", linewidth=1)
        left.set_yscale("log")
        left.set(xlabel="sent at (s)", ylabel="healthy message latency (ms)",
                 title="Latency of healthy messages (dotted: poison sent)")
        right.set(xlabel="time (s)", ylabel="messages not yet handled",
                  title="Consumer lag on the source partition")
        left.legend()
        right.legend()
        blocking, topics = MODES
        return plots.finish(fig, f"A poison message retried in place holds up healthy ones:\nlag up to "
                                 f"{self.max_lag[blocking]} vs {self.max_lag[topics]} with retry topics, "
                                 f"p50 latency {self.speedup(50):.0f}x lower")


async def _lag(consumer, tp) -> int:
    """Log-end offset minus the group's committed offset of `tp`."""
    end = (await consumer.end_offsets([tp]))[tp]
    return end - (await consumer.committed(tp) or 0)


async def _dead_letters(address: str, topic: str) -> list[DeadLetter]:
    found = []
    for record in await read_topic(address, topic):
        meta = decode(record.headers)
        found.append(DeadLetter(json.loads(record.value)["n"], meta.attempts, meta.error_kind))
    return found


async def _scenario(address: str, healthy: int, poison: int, seconds: float, policy: RetryPolicy,
                    sample_ms: int) -> BlockingRun:
    began = time.monotonic()
    total = healthy + poison
    poisoned = poison_positions(total, poison)
    latency = {mode: {} for mode in MODES}
    sent_s, lag, dead = {}, {mode: [] for mode in MODES}, {}

    def handler(mode):
        def handle(record):
            event = json.loads(record.value)
            if event["poison"]:
                raise DownstreamDown("the email provider is down")
            latency[mode][event["n"]] = time.time() * 1000 - event["sent_ms"]
        return handle

    async with run_topics(address, retries=policy.retries) as blocking_topics, \
            run_topics(address, retries=policy.retries) as retry_topics, \
            producer(address) as send, \
            retry_consumer(address, blocking_topics) as blocking_consumer, \
            retry_consumer(address, retry_topics) as routed_consumer:
        sources = {"blocking": blocking_topics.source, "retry topics": retry_topics.source}
        consumers = {"blocking": blocking_consumer, "retry topics": routed_consumer}
        in_place = InPlaceRetries(blocking_consumer, send, blocking_topics, policy,
                                  handler("blocking"))
        router = RetryRouter(send, routed_consumer, retry_topics, policy)
        handle_routed, routed_dead = handler("retry topics"), []

        async def process(record):
            route = await router.process(record, handle_routed)
            if route is not None and route.dead:
                routed_dead.append(route)

        loop = RetryLoop(routed_consumer, retry_topics, process)
        await all_or_none(until_assigned(blocking_consumer, in_place.poll_once), loop.join())
        start = time.monotonic()

        async def produce():
            for n in range(total):
                await asyncio.sleep(max(0.0, start + n * seconds / total - time.monotonic()))
                sent_s[n] = time.monotonic() - start
                body = json.dumps({"n": n, "poison": n in poisoned,
                                   "sent_ms": time.time() * 1000}).encode()
                await asyncio.gather(*(send.send_and_wait(topic, body)
                                       for topic in sources.values()))

        async def sample_once():
            at = time.monotonic() - start
            for mode in MODES:
                partition = TopicPartition(sources[mode], 0)
                lag[mode].append((at, await _lag(consumers[mode], partition)))

        async def sample():
            while True:
                await sample_once()
                await asyncio.sleep(sample_ms / 1000)

        sampler = asyncio.create_task(sample())
        try:
            await all_or_none(
                produce(),
                in_place.run(lambda: len(latency["blocking"]) == healthy
                             and in_place.dead_lettered == poison, timeout=40),
                loop.run(lambda: len(latency["retry topics"]) == healthy
                         and len(routed_dead) == poison, timeout=40))
        finally:
            sampler.cancel()
        await sample_once()
        dead["blocking"] = await _dead_letters(address, blocking_topics.dlt)
        dead["retry topics"] = await _dead_letters(address, retry_topics.dlt)
    return BlockingRun(healthy, poisoned, policy.backoff, policy.max_attempts, sent_s, latency,
                       lag, dead, time.monotonic() - began)


def blocking_vs_retry_topics(healthy: int = 100, poison: int = 2, seconds: float = 2.0,
                             backoff: Backoff = BACKOFF, max_attempts: int = 4,
                             sample_ms: int = 50) -> BlockingRun:
    """`healthy` + `poison` messages produced evenly over `seconds` while both consumers run; the
    poison ones (early in the stream) always fail with a transient error."""
    policy = RetryPolicy(max_attempts=max_attempts, backoff=backoff)
    return run(_scenario(bootstrap(), healthy, poison, seconds, policy, sample_ms), timeout=60)
