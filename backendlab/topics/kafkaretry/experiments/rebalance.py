"""Scaling out with a consumer group, and the rebalance every change costs.

`rebalance(partitions)` sends a steady stream of keyed messages to a topic of `partitions`
partitions. Consumers of one group join one at a time, `partitions + 1` of them by default, then the
first one leaves. Each consumer is an in-process aiokafka consumer with its own connection and its
own member id, the same as if it ran in a process of its own; its rebalance listener records when
it lost and got partitions, and it records every message it handles. What it shows: a partition has
exactly one owner in a group, so consumers beyond the partition count idle (aiokafka's round-robin
assignor deals partitions to the members in member-id order, and a member id begins with the
client id, so the last consumer to join, `consumer-<partitions + 1>`, is the one left out until the
first leaves); and every join or leave stops the whole group for about a second (aiokafka
rebalances eagerly: every member gives up every partition, then the group re-forms), during which
nothing is consumed, and a backlog builds that the new owners then catch up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

from backendlab.topics.kafkaretry.experiments.common import (bootstrap, producer, quiet_logger, run,
                                                             run_topics)
from backendlab.topics.kafkaretry.consumer import COMMIT_LOST, GROUP_TIMINGS
from backendlab.plots import PALETTE, figure, finish


@dataclass(frozen=True)
class Ownership:
    """A rebalance listener call: at `at` s, `consumer` was `assigned` or `revoked` `partitions`."""

    at: float
    consumer: str
    event: str
    partitions: tuple[int, ...]


@dataclass
class Rebalance:
    """One membership change: made at `started`, settled (every member got its assignment, every
    partition owned) at `settled`. `owners` ({partition: [consumers]}) and `idle` are the group as
    it stood after running steadily, just before the next change. `pause`: the longest time no
    consumer handled a message; `stall`: the longest time one partition was not served."""

    change: str
    started: float
    settled: float
    owners: dict[int, list[str]] = field(default_factory=dict)
    idle: list[str] = field(default_factory=list)
    pause: float = 0.0
    stall: float = 0.0

    @property
    def seconds(self) -> float:
        return self.settled - self.started

    def one_owner_each(self, partitions: int) -> bool:
        return sorted(self.owners) == list(range(partitions)) and \
            all(len(names) == 1 for names in self.owners.values())

    def snapshot(self, members: list[Member]) -> None:
        self.owners = {p: sorted(m.name for m in members if p in m.owned)
                       for p in sorted({p for m in members for p in m.owned})}
        self.idle = [m.name for m in members if not m.owned]


class Member:
    """One consumer of the group: its assignment as the listener reports it, and what it handled."""

    def __init__(self, name: str, clock, events: list[Ownership]):
        self.name, self.clock, self.events = name, clock, events
        self.owned: set[int] = set()
        self.handled: list[tuple[float, int, int]] = []  # (time s, partition, offset)
        self.commits_lost = 0
        self.consumer = None
        self.task: asyncio.Task | None = None

    def listener(self) -> ConsumerRebalanceListener:
        member = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked):
                member.note("revoked", revoked)
                await member.commit()  # what was handled stays handled for the next owner

            async def on_partitions_assigned(self, assigned):
                member.note("assigned", assigned)

        return Listener()

    def note(self, event: str, partitions) -> None:
        numbers = tuple(sorted(tp.partition for tp in partitions))
        self.owned = set(numbers) if event == "assigned" else self.owned - set(numbers)
        self.events.append(Ownership(self.clock(), self.name, event, numbers))

    def assigned_since(self, moment: float) -> bool:
        return any(e.consumer == self.name and e.event == "assigned" and e.at >= moment
                   for e in self.events)

    async def commit(self) -> None:
        try:
            await self.consumer.commit()
        except COMMIT_LOST:  # the group moved on: these records will be handled again
            self.commits_lost += 1

    async def consume(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.handled.extend((self.clock(), r.partition, r.offset) for r in records)
            if batch:
                await self.commit()


@dataclass
class RebalanceRun:
    """What `rebalance` saw. Times are seconds since the producer started. `produced` and
    `handled` hold (partition, offset) pairs; `handled` counts a redelivered record each time."""

    partitions: int
    consumers: list[str]
    rate_per_s: float
    bucket_s: float
    events: list[Ownership]
    rebalances: list[Rebalance]
    produced: set[tuple[int, int]]
    handled: dict[str, list[tuple[float, int, int]]]
    commits_lost: int
    ended: float
    seconds: float = 0.0

    @property
    def handled_once(self) -> set[tuple[int, int]]:
        return {(p, o) for rows in self.handled.values() for _, p, o in rows}

    @property
    def duplicates(self) -> int:
        """Records handled more than once (redelivered after a rebalance: at-least-once)."""
        return sum(len(rows) for rows in self.handled.values()) - len(self.handled_once)

    @property
    def missing(self) -> set[tuple[int, int]]:
        return self.produced - self.handled_once

    def throughput(self) -> dict[str, list[int]]:
        """{consumer: messages handled per bucket of `bucket_s` seconds}."""
        buckets = int(self.ended / self.bucket_s) + 1
        out = {}
        for name, rows in self.handled.items():
            counts = [0] * buckets
            for at, _, _ in rows:
                counts[min(buckets - 1, int(at / self.bucket_s))] += 1
            out[name] = counts
        return out

    def ownership(self) -> list[tuple[int, str, float, float]]:
        """(partition, consumer, from s, to s): who owned which partition while the run lasted
        (consumers shutting down after it may still rebalance: those calls are left out)."""
        opened: dict[tuple[int, str], float] = {}
        spans = []
        for e in sorted((e for e in self.events if e.at <= self.ended), key=lambda e: e.at):
            for p in e.partitions:
                if e.event == "assigned":
                    opened[(p, e.consumer)] = e.at
                elif (p, e.consumer) in opened:
                    spans.append((p, e.consumer, opened.pop((p, e.consumer)), e.at))
        spans += [(p, c, start, self.ended) for (p, c), start in opened.items()]
        return sorted(spans, key=lambda s: (s[0], s[2]))

    def after(self, change: str) -> Rebalance:
        """The rebalance of one change, e.g. `run.after("consumer-2 joins")`."""
        return next(r for r in self.rebalances if r.change == change)

    def summary(self) -> dict:
        return {"partitions": self.partitions, "consumers": len(self.consumers),
                "rebalances": [{"change": r.change, "settled after s": round(r.seconds, 2),
                                "pause s": round(r.pause, 2), "owners": r.owners, "idle": r.idle}
                               for r in self.rebalances],
                "produced": len(self.produced), "missing": len(self.missing),
                "duplicates": self.duplicates,
                "handled": {name: len(rows) for name, rows in self.handled.items()},
                "seconds": round(self.seconds, 2)}

    def idle_spans(self) -> list[tuple[str, float, float]]:
        """(consumer, from s, to s): a member left without a partition by a change, from that
        change until the next one (or the end of the run)."""
        ends = [r.started for r in self.rebalances[1:]] + [self.ended]
        return [(name, r.started, end) for r, end in zip(self.rebalances, ends) for name in r.idle]

    def pauses(self) -> list[float]:
        """Each rebalance's pause, leaving out the first join (nothing to pause yet) if there are more."""
        return [r.pause for r in self.rebalances[1:] or self.rebalances]

    def plot(self):
        """Left: one lane per consumer, what it owned over time (p0, p1...) and when it sat idle.
        Right: messages handled per second by each consumer. Light bands: each rebalance."""
        fig, (owners, rates) = figure(ncols=2, width=12, height=4.2)
        colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(self.consumers)}
        lane = {name: i for i, name in enumerate(self.consumers)}
        self._draw_owners(owners, colours, lane)
        times = [i * self.bucket_s for i in range(int(self.ended / self.bucket_s) + 1)]
        for name, counts in self.throughput().items():
            rates.plot(times, [c / self.bucket_s for c in counts], color=colours[name], label=name,
                       linewidth=1.5)
        rates.set_xlabel("seconds")
        rates.set_ylabel("messages handled per second")
        rates.set_title("Throughput per consumer: zero in every rebalance", fontsize=10)
        for i, change in enumerate(self.rebalances):
            for ax in (owners, rates):
                ax.axvspan(change.started, change.settled, color=PALETTE[5], alpha=0.12, linewidth=0,
                           label="rebalancing" if ax is rates and i == 0 else None)
        rates.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        pauses = self.pauses()
        idle = sorted({name for name, _, _ in self.idle_spans()})
        return finish(fig, f"{self.partitions} partitions keep at most {self.partitions} consumers busy"
                           f"{' (' + ', '.join(idle) + ' idle)' if idle else ''}; each rebalance "
                           f"paused the group {min(pauses):.1f}-{max(pauses):.1f} s")

    def _draw_owners(self, ax, colours: dict[str, str], lane: dict[str, int]) -> None:
        """Each consumer's lane: a slice per partition it owned (named pN), hatched while idle."""
        slot = 0.8 / self.partitions
        for partition, consumer, start, end in self.ownership():
            y = lane[consumer] - 0.4 + (partition + 0.5) * slot
            ax.barh(y, end - start, left=start, height=slot * 0.9, color=colours[consumer])
            if end - start > 0.5:
                ax.text(start + 0.05, y, f"p{partition}", va="center", fontsize=7, color="white")
        for consumer, start, end in self.idle_spans():
            ax.barh(lane[consumer], end - start, left=start, height=0.8, fill=False, hatch="//",
                    edgecolor=colours[consumer], linewidth=0.8)
            ax.text((start + end) / 2, lane[consumer], "idle", ha="center",
                    va="center", fontsize=8, bbox=dict(facecolor="white", edgecolor="none", pad=1))
        for change in self.rebalances:
            name, verb = change.change.split(" ")
            ax.text(change.started, 1.01, ("+" if verb == "joins" else "-") + name.rsplit("-", 1)[-1],
                    transform=ax.get_xaxis_transform(), fontsize=8, va="bottom")
        ax.set_yticks(range(len(lane)), list(lane))
        ax.set_ylim(len(lane) - 0.5, -0.5)
        ax.set_xlabel("seconds")
        ax.set_title("Partitions each consumer owned (+n joins, -n leaves)", fontsize=10, pad=14)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch inside [start, end] without a time from `times`."""
    inside = [start] + sorted(t for t in times if start < t < end) + [end]
    return max(b - a for a, b in zip(inside, inside[1:]))


def measure_pauses(run: RebalanceRun) -> None:
    """Fill in each rebalance's pause (no message handled by anyone) and stall (the worst partition
    without service), from the change until a little after the group settled."""
    rows = [row for rows in run.handled.values() for row in rows]
    for change in run.rebalances:
        end = min(run.ended, change.settled + 0.3)
        change.pause = longest_gap([at for at, _, _ in rows], change.started, end)
        change.stall = max(longest_gap([at for at, p, _ in rows if p == partition],
                                       change.started, end)
                           for partition in range(run.partitions))


def rebalance(partitions: int = 4, consumers: int | None = None, *, rate_per_s: float = 200.0,
              steady_s: float = 0.3, bucket_s: float = 0.25, timeout: float = 40.0) -> RebalanceRun:
    """Produce `rate_per_s` keyed messages a second to a topic of `partitions` partitions while
    `consumers` (default: one more than partitions) join one group one at a time, each after the
    group settled from the last change and ran steadily for `steady_s`; then the first leaves."""
    consumers = partitions + 1 if consumers is None else consumers
    if partitions < 1 or consumers < 2:
        raise ValueError(f"need at least 1 partition and 2 consumers (one leaves at the end), "
                         f"got {partitions} and {consumers}")
    # aiokafka warns on every heartbeat during a rebalance; here rebalances are the point.
    with quiet_logger("aiokafka.consumer.group_coordinator", logging.ERROR):
        result = run(_scenario(bootstrap(), partitions, consumers, rate_per_s, steady_s, bucket_s,
                               timeout), timeout=timeout + 15)
    measure_pauses(result)
    return result


async def _scenario(address: str, partitions: int, count: int, rate_per_s: float,
                    steady_s: float, bucket_s: float, timeout: float) -> RebalanceRun:
    began = time.perf_counter()
    deadline = began + timeout
    events: list[Ownership] = []
    members: list[Member] = []
    rebalances: list[Rebalance] = []
    produced: set[tuple[int, int]] = set()
    async with run_topics(address, retries=0, partitions=partitions) as topics, \
            producer(address) as sender:
        group = f"{topics.source}.workers"
        t0 = time.perf_counter()

        def clock() -> float:
            return time.perf_counter() - t0

        stop = asyncio.Event()
        sending = asyncio.create_task(_produce(sender, topics.source, rate_per_s, produced, stop))
        try:
            for n in range(1, count + 1):
                member = Member(f"consumer-{n}", clock, events)
                member.consumer = AIOKafkaConsumer(
                    bootstrap_servers=address, group_id=group, client_id=member.name,
                    enable_auto_commit=False, auto_offset_reset="earliest", **GROUP_TIMINGS)
                member.consumer.subscribe([topics.source], listener=member.listener())
                members.append(member)
                started = clock()
                await member.consumer.start()
                member.task = asyncio.create_task(member.consume())
                change = await _settle(f"{member.name} joins", started, members, partitions,
                                       deadline)
                await asyncio.sleep(steady_s)
                change.snapshot(members)
                rebalances.append(change)
            leaving = members[0]
            started = clock()
            await _stop(leaving)
            change = await _settle(f"{leaving.name} leaves", started, members[1:], partitions,
                                   deadline)
            await asyncio.sleep(steady_s)
            change.snapshot(members[1:])
            rebalances.append(change)
            stop.set()
            await sending
            await _drain(members, produced, deadline)
            ended = clock()
        finally:
            sending.cancel()
            for member in members:
                await _stop(member)
    return RebalanceRun(partitions, [m.name for m in members], rate_per_s, bucket_s, events,
                        rebalances, produced, {m.name: m.handled for m in members},
                        sum(m.commits_lost for m in members), ended,
                        time.perf_counter() - began)


async def _produce(sender, topic: str, rate_per_s: float, produced: set,
                   stop: asyncio.Event) -> None:
    """Send keyed messages at a steady rate until `stop` is set; note each acknowledged one."""
    n, t0 = 0, time.perf_counter()
    while not stop.is_set():
        meta = await sender.send_and_wait(topic, str(n).encode(), key=f"user-{n % 64}".encode())
        produced.add((meta.partition, meta.offset))
        n += 1
        await asyncio.sleep(max(0.0, t0 + n / rate_per_s - time.perf_counter()))


async def _settle(change: str, started: float, members: list[Member], partitions: int,
                  deadline: float) -> Rebalance:
    """Wait until every member got its assignment after `started` and every partition is owned."""
    while True:
        _raise_failed(members)
        owned = {p for m in members for p in m.owned}
        if all(m.assigned_since(started) for m in members) and len(owned) == partitions:
            return Rebalance(change, started, members[0].clock())
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the group did not settle after '{change}' in time")
        await asyncio.sleep(0.01)


async def _drain(members: list[Member], produced: set, deadline: float) -> None:
    """Wait until the members (those gone included) handled every produced record."""
    while produced - {(p, o) for m in members for _, p, o in m.handled}:
        _raise_failed(members)
        if time.perf_counter() > deadline:
            raise TimeoutError("the group did not handle every produced message in time")
        await asyncio.sleep(0.02)


def _raise_failed(members: list[Member]) -> None:
    """Raise the error a member's consuming task died of, if any."""
    for member in members:
        if member.task is not None and member.task.done() and not member.task.cancelled():
            member.task.result()


async def _stop(member: Member) -> None:
    """Stop consuming and leave the group (once)."""
    if member.task is not None:
        member.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await member.task
        member.task = None
    if member.consumer is not None:
        await member.consumer.stop()
        member.consumer = None
