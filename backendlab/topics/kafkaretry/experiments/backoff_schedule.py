"""Experiment 3: when retries happen, and how a consumer waits for them.

(a) `retry_schedule`: many messages fail at the same instant (the downstream went down). Without
jitter every one of them retries at the same moments, spikes that hit the downstream just as it
comes back; full jitter spreads them out. Pure computation.

(b) `due_time_accuracy`: live on the broker, a retry copy's due time is honoured either by pausing
its partition (`RetryLoop`) or by sleeping in the poll loop. Both run retries on time; only the
sleeping loop stops polling for a whole backoff, and one that sleeps past `max_poll_interval_ms`
is thrown out of its group: its commit fails and the record is delivered again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, replace
from itertools import accumulate

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError

from backendlab import plots
from backendlab.topics.kafkaretry.experiments.blocking import DownstreamDown
from backendlab.topics.kafkaretry.experiments.common import (all_or_none, bootstrap, producer,
                                                             quiet_logger, run, run_topics)
from backendlab.topics.kafkaretry import (Backoff, RetryLoop, RetryPolicy, RetryRouter, decode, due_ms,
                                          retry_consumer)
from backendlab.topics.kafkaretry.consumer import until_assigned
from backendlab.topics.kafkaretry.router import now_ms

SCHEDULES = ("no jitter", "full jitter")
LOOPS = ("pause and resume", "sleep in the loop")
SCHEDULE_BACKOFF = Backoff(base_ms=200, cap_ms=2000)
LIVE_BACKOFF = Backoff(base_ms=300, cap_ms=2000, jitter=False)


@dataclass
class RetrySchedule:
    """Each failure's delay before each retry, with and without jitter; every retry fails again
    (the downstream is still down), so retry n happens after the sum of the first n delays."""

    failures: int
    bucket_ms: int
    ceilings_ms: list[int]  # the exponential ceiling of retry 1, 2, ...
    delays_ms: dict[str, list[list[int]]]  # schedule -> retry n - 1 -> each failure's delay

    def times_ms(self, schedule: str) -> list[list[int]]:
        """When each failure's retry n happens, ms after they all failed: [retry n - 1][failure]."""
        per_failure = [list(accumulate(delays)) for delays in zip(*self.delays_ms[schedule])]
        return [list(times) for times in zip(*per_failure)]

    def per_bucket(self, schedule: str) -> Counter:
        """Retries per `bucket_ms` window: bucket index -> count."""
        return Counter(t // self.bucket_ms for times in self.times_ms(schedule) for t in times)

    def busiest(self, schedule: str) -> int:
        """The most retries that reach the downstream within one bucket."""
        return max(self.per_bucket(schedule).values())

    @property
    def within_ceiling(self) -> bool:
        """Every jittered delay lies in [0, its retry's exponential ceiling]."""
        return all(0 <= d <= ceiling for delays, ceiling in zip(self.delays_ms["full jitter"],
                                                                 self.ceilings_ms)
                   for d in delays)

    def summary(self) -> dict:
        return {schedule: {f"busiest {self.bucket_ms} ms": self.busiest(schedule),
                           "last retry at ms": max(self.times_ms(schedule)[-1])}
                for schedule in SCHEDULES} | {"failures": self.failures,
                                              "ceilings ms": self.ceilings_ms}

    def plot(self):
        """Left: retries per bucket over time, both schedules; right: each jittered delay per retry
        under its exponential ceiling."""
        fig, (left, right) = plots.figure(ncols=2, width=11)
        for schedule, colour in zip(SCHEDULES, plots.PALETTE):
            counts = self.per_bucket(schedule)
            buckets = range(max(counts) + 2)
            left.plot([b * self.bucket_ms / 1000 for b in buckets], [counts[b] for b in buckets],
                      drawstyle="steps-post", color=colour, label=schedule)
        left.set(xlabel="time after the outage began (s)",
                 ylabel=f"retries per {self.bucket_ms} ms", title="Load on the downstream")
        left.legend()
        spread = random.Random(0)
        for n, (delays, ceiling) in enumerate(zip(self.delays_ms["full jitter"], self.ceilings_ms),
                                              start=1):
            right.plot([n + spread.uniform(-0.25, 0.25) for _ in delays], delays, ".", markersize=2,
                       color=plots.PALETTE[1], label="full jitter" if n == 1 else None)
            right.hlines(ceiling, n - 0.35, n + 0.35, color=plots.PALETTE[0],
                         label="no jitter (the ceiling)" if n == 1 else None)
        right.set_xticks(range(1, len(self.ceilings_ms) + 1))
        right.set(xlabel="retry", ylabel="delay before it (ms)", title="Delay per retry")
        right.legend()
        return plots.finish(fig, f"{self.failures} messages fail at once: without jitter up to "
                                 f"{self.busiest('no jitter')} retry in the same {self.bucket_ms} ms, with full "
                                 f"jitter at most {self.busiest('full jitter')}")


def retry_schedule(failures: int = 200, attempts: int = 4, backoff: Backoff = SCHEDULE_BACKOFF,
                   seed: int = 7, bucket_ms: int = 10) -> RetrySchedule:
    """Retries 1..`attempts` of `failures` messages that failed together, under `backoff` without
    jitter and with full jitter (its `jitter` flag is ignored); `seed` replays the jitter."""
    rng = random.Random(seed)
    steady, jittered = replace(backoff, jitter=False), replace(backoff, jitter=True)
    ceilings = steady.schedule(attempts)
    plans = {"no jitter": [ceilings] * failures,
             "full jitter": [jittered.schedule(attempts, rng) for _ in range(failures)]}
    return RetrySchedule(failures, bucket_ms, ceilings,
                         {name: [list(d) for d in zip(*plan)] for name, plan in plans.items()})


class _CountRevocations(ConsumerRebalanceListener):
    """Counts the times the group takes partitions away from a loop (the first join takes none)."""

    def __init__(self, loop: "SleepingLoop"):
        self.loop = loop

    async def on_partitions_revoked(self, revoked):
        self.loop.revocations += bool(revoked)

    async def on_partitions_assigned(self, assigned):
        pass


class SleepingLoop:
    """The naive retry consumer: a fetched record that is not due yet is waited for by sleeping in
    the poll loop. A commit that fails because the group moved on ends the batch: the partition's
    new owner (maybe this consumer, after rejoining) reads it again from the last commit."""

    def __init__(self, consumer, topics, process, poll_ms: int = 100):
        self.consumer, self.topics, self.process, self.poll_ms = consumer, topics, process, poll_ms
        self.commit_errors: list[str] = []
        self.revocations = 0
        consumer.subscribe([topics.source, *topics.retry_names],
                           listener=_CountRevocations(self))

    async def poll_once(self) -> None:
        for records in (await self.consumer.getmany(timeout_ms=self.poll_ms)).values():
            for record in records:
                due = due_ms(record) if record.topic != self.topics.source else None
                if due is not None and due > now_ms():
                    await asyncio.sleep((due - now_ms()) / 1000)
                try:
                    await self.process(record)
                except CommitFailedError as exc:
                    self.commit_errors.append(type(exc).__name__)
                    return


def poll_gaps_ms(polls_s: list[float]) -> list[float]:
    """The time between each two successive polls, in ms, from when each poll returned (s)."""
    return [(b - a) * 1000 for a, b in zip(polls_s, polls_s[1:])]


@dataclass
class LoopRun:
    """One poison message through a loop: when each retry was due and ran, and when each poll
    returned."""

    loop: str
    retries: list[tuple[int, int, float]]  # (attempt, due ms, ran ms), epoch ms
    polls_s: list[float]  # when each poll returned, s from the first send

    @property
    def lateness_ms(self) -> list[float]:
        """How long after its due time each retry ran (never negative if due times are kept)."""
        return [ran - due for _, due, ran in self.retries]

    @property
    def poll_gaps_ms(self) -> list[float]:
        return poll_gaps_ms(self.polls_s)

    @property
    def longest_poll_gap_ms(self) -> float:
        return max(self.poll_gaps_ms)


@dataclass
class Overrun:
    """A sleeping loop whose backoff outlasts `max_poll_interval_ms`: the consumer leaves its group
    while it sleeps, its commit afterwards fails, and the same retry copy is handled again.
    `deliveries` has (s from the first send, "source" or "retry.1", offset) per handler call."""

    max_poll_interval_ms: int
    sleep_ms: int
    revocations: int  # times the group took its partitions away
    commit_errors: list[str]
    deliveries: list[tuple[float, str, int]]
    polls_s: list[float]

    @property
    def redelivered(self) -> bool:
        """Was one record (same topic and offset) handled more than once?"""
        return max(Counter((place, offset) for _, place, offset in self.deliveries).values()) > 1

    @property
    def poll_gaps_ms(self) -> list[float]:
        return poll_gaps_ms(self.polls_s)


@dataclass
class DueTimeRun:
    """Retries driven by due times, with a paused partition and with a sleeping poll loop."""

    backoff: Backoff
    max_attempts: int
    poll_ms: int
    loops: dict[str, LoopRun]
    overrun: Overrun
    seconds: float

    def summary(self) -> dict:
        return {name: {"lateness ms": [round(v) for v in loop.lateness_ms],
                       "longest poll gap ms": round(loop.longest_poll_gap_ms)}
                for name, loop in self.loops.items()} | {
            "sleep past max.poll.interval": {
                "max_poll_interval_ms": self.overrun.max_poll_interval_ms,
                "slept ms": self.overrun.sleep_ms,
                "revocations": self.overrun.revocations,
                "commit errors": self.overrun.commit_errors,
                "handled": [f"{place}@{offset} at {t:.2f} s"
                            for t, place, offset in self.overrun.deliveries],
                "redelivered": self.overrun.redelivered},
            "seconds": round(self.seconds, 1)}

    def plot(self):
        """Left: the time between polls of each loop, and the max.poll.interval the overrunning loop
        broke (what pausing wins); right: how late each retry ran after its due time (its price)."""
        fig, (gaps, late) = plots.figure(ncols=2, width=11, height=3.9)
        width = 0.8 / len(LOOPS)
        for i, (name, colour) in enumerate(zip(LOOPS, plots.PALETTE[1:])):
            loop = self.loops[name]
            attempts = [attempt for attempt, _, _ in loop.retries]
            late.bar([a + (i - (len(LOOPS) - 1) / 2) * width for a in attempts], loop.lateness_ms,
                     width, color=colour, label=name)
            _gaps(gaps, loop.polls_s, colour, name)
        overrun = self.overrun
        _gaps(gaps, overrun.polls_s, plots.PALETTE[0], f"sleep {overrun.sleep_ms} ms (thrown out)")
        gaps.axhline(overrun.max_poll_interval_ms, color=plots.PALETTE[0], linestyle="--",
                     linewidth=1, label=f"max_poll_interval_ms={overrun.max_poll_interval_ms}")
        late.set_xticks(attempts)
        gaps.set(xlabel="time (s)", ylabel="time between two polls (ms)")
        gaps.set_title("What is measured: gaps between polls (lower is better)", fontsize=10)
        late.set(xlabel="attempt", ylabel="ran after its due time (ms)")
        late.set_title("The price of pausing: a retry runs up to a poll late", fontsize=10)
        for ax in (gaps, late):  # room for the legend above the bars and lines
            ax.set_ylim(0, ax.get_ylim()[1] * 1.45)
        late.legend(ncol=2, loc="upper center", fontsize=9)
        gaps.legend(fontsize=8, ncol=2, loc="upper center")
        pause, sleep = (self.loops[name] for name in LOOPS)
        return plots.finish(fig, f"Pausing the partition keeps polling (longest gap "
                                 f"{pause.longest_poll_gap_ms:.0f} ms); sleeping stops it "
                                 f"({sleep.longest_poll_gap_ms:.0f} ms),\nand past max.poll.interval "
                                 "the consumer is thrown out and handles the message twice")


async def _drive(poll_once, until, start: float, timeout: float) -> list[float]:
    """Call `poll_once` until `until()`; when each poll returned, in s from `start`."""
    deadline, polls = time.monotonic() + timeout, []
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the loop did not finish within {timeout} s")
        await poll_once()
        polls.append(time.monotonic() - start)
    return polls


async def _retry_chain(address: str, loop_name: str, policy: RetryPolicy, poll_ms: int) -> LoopRun:
    """One poison message that always fails, through every retry topic to the dead-letter topic."""
    async with run_topics(address, retries=policy.retries) as topics, \
            producer(address) as send, retry_consumer(address, topics) as consumer:
        router = RetryRouter(send, consumer, topics, policy)
        retries, dead = [], []

        def handle(record):
            meta = decode(record.headers)
            if meta is not None:
                retries.append((meta.attempts + 1, meta.due_ms, time.time() * 1000))
            raise DownstreamDown("the email provider is down")

        async def process(record):
            route = await router.process(record, handle)
            if route.dead:
                dead.append(route)

        if loop_name == "pause and resume":
            loop = RetryLoop(consumer, topics, process, poll_ms=poll_ms)
        else:
            loop = SleepingLoop(consumer, topics, process, poll_ms=poll_ms)
        await until_assigned(consumer, loop.poll_once)
        start = time.monotonic()
        await send.send_and_wait(topics.source, b"poison")
        polls = await _drive(loop.poll_once, lambda: bool(dead), start, timeout=30)
    return LoopRun(loop_name, retries, polls)


async def _overrun(address: str, max_poll_interval_ms: int, sleep_ms: int, poll_ms: int) -> Overrun:
    """A message that fails once and passes on its retry, due `sleep_ms` later, in a sleeping loop
    with `max_poll_interval_ms`. Stops once the retry copy is handled and committed."""
    policy = RetryPolicy(max_attempts=2, backoff=Backoff(sleep_ms, sleep_ms, jitter=False))
    # Tansu: a member thrown out of its group waits one session timeout in SyncGroup when it
    # rejoins; 1 s (not GROUP_TIMINGS' 2 s) keeps the rejoin at about a second.
    timings = dict(max_poll_interval_ms=max_poll_interval_ms, session_timeout_ms=1000,
                   heartbeat_interval_ms=250)
    async with run_topics(address, retries=policy.retries) as topics, \
            producer(address) as send, retry_consumer(address, topics, **timings) as consumer:
        router = RetryRouter(send, consumer, topics, policy)
        deliveries, committed = [], []

        def handle(record):
            place = record.topic.removeprefix(topics.source).lstrip(".") or "source"
            deliveries.append((time.monotonic() - start, place, record.offset))
            if record.topic == topics.source:
                raise DownstreamDown("the email provider is down")

        async def process(record):
            if await router.process(record, handle) is None:
                committed.append(record)

        loop = SleepingLoop(consumer, topics, process, poll_ms=poll_ms)
        await until_assigned(consumer, loop.poll_once)
        start = time.monotonic()
        await send.send_and_wait(topics.source, b"fails once")
        polls = await _drive(loop.poll_once, lambda: bool(committed), start, timeout=30)
    return Overrun(max_poll_interval_ms, sleep_ms, loop.revocations, loop.commit_errors,
                   deliveries, polls)


async def _due_times(address, policy, poll_ms, max_poll_interval_ms, overrun_ms) -> DueTimeRun:
    began = time.monotonic()
    pausing, sleeping, overrun = await all_or_none(
        *(_retry_chain(address, name, policy, poll_ms) for name in LOOPS),
        _overrun(address, max_poll_interval_ms, overrun_ms, poll_ms))
    return DueTimeRun(policy.backoff, policy.max_attempts, poll_ms,
                      {loop.loop: loop for loop in (pausing, sleeping)}, overrun,
                      time.monotonic() - began)


def due_time_accuracy(backoff: Backoff = LIVE_BACKOFF, max_attempts: int = 4, poll_ms: int = 100,
                      max_poll_interval_ms: int = 1000, overrun_ms: int = 1500) -> DueTimeRun:
    """A poison message through `max_attempts` attempts under each loop, and, at the same time, a
    sleeping loop whose one backoff (`overrun_ms`) outlasts `max_poll_interval_ms`."""
    policy = RetryPolicy(max_attempts=max_attempts, backoff=backoff)
    with quiet_logger("aiokafka"):  # it logs the overrun's expected rebalance as an error
        return run(_due_times(bootstrap(), policy, poll_ms, max_poll_interval_ms, overrun_ms),
                   timeout=60)


def _gaps(ax, polls_s: list[float], colour: str, label: str) -> None:
    """Each gap between polls as a segment over the time it lasted, at its length."""
    ax.hlines(poll_gaps_ms(polls_s), polls_s[:-1], polls_s[1:], color=colour, linewidth=2,
              label=label)
