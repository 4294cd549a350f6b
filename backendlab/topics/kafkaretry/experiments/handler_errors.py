"""Experiment 1: what Kafka does when a handler raises: nothing. The consumer's code decides.

One topic, a few poison records whose payload does not parse, two consumers in groups of their own:

- "swallow" catches the error, logs it and commits anyway: the poison records are lost, the
  committed offset reaches the log end and the lag is 0, so the dashboards say all is well;
- "crash" lets the error escape its poll loop: the failing record is never committed, so every
  restart gets it again and crashes again; the partition is stuck behind it and the lag grows.

Both commit after each record by hand. A restart is a new consumer in the same group: it takes the
partition with `assign()` and starts from the group's committed offset (a `subscribe()` group join
costs 1 to 4 s on Tansu per restart, for the same effect).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from matplotlib.patches import Patch

from backendlab import plots
from backendlab.topics.kafkaretry.experiments.common import (all_or_none, bootstrap, producer, run,
                                                             run_topics)
from backendlab.topics.kafkaretry.consumer import GROUP_TIMINGS

OUTCOMES = {  # outcome: (colour, what it means)
    "handled": (plots.PALETTE[4], "the handler succeeded"),
    "lost": (plots.PALETTE[0], "failed, yet committed past: never retried"),
    "stuck": (plots.PALETTE[2], "failed, not committed: redelivered on every restart"),
    "never reached": (plots.PALETTE[5], "behind the stuck record: never handled"),
}


def outcome(offset: int, handled: set[int], delivered: set[int], committed: int) -> str:
    """What became of one record, given the offsets handled, those delivered to the handler
    (successfully or not), and the group's committed offset."""
    if offset in handled:
        return "handled"
    if offset < committed:
        return "lost"
    return "stuck" if offset in delivered else "never reached"


@dataclass
class StrategyRun:
    """One strategy's consumer runs: the offset of every delivery to the handler and of every
    success, what it logged, and where the group's commit ended."""

    name: str
    messages: int
    delivered: list[int] = field(default_factory=list)  # an offset per call of the handler
    handled: list[int] = field(default_factory=list)  # an offset per call that returned
    log: list[str] = field(default_factory=list)
    consumer_runs: int = 0
    committed: int = 0
    log_end: int = 0

    @property
    def outcomes(self) -> dict[int, str]:
        handled, delivered = set(self.handled), set(self.delivered)
        return {offset: outcome(offset, handled, delivered, self.committed)
                for offset in range(self.messages)}

    def offsets(self, kind: str) -> set[int]:
        """The offsets whose outcome is `kind` ("handled", "lost", "stuck", "never reached")."""
        return {offset for offset, found in self.outcomes.items() if found == kind}

    @property
    def lost(self) -> set[int]:
        return self.offsets("lost")

    @property
    def lag(self) -> int:
        """Records the group has not committed: what a lag dashboard shows."""
        return self.log_end - self.committed

    @property
    def failed(self) -> set[int]:
        """Offsets whose handler raised every time it ran."""
        return set(self.delivered) - set(self.handled)

    def deliveries(self, offset: int) -> int:
        """How many times the record at `offset` reached the handler."""
        return self.delivered.count(offset)

    def summary(self) -> dict:
        return {"committed": self.committed, "log_end": self.log_end, "lag": self.lag,
                "consumer_runs": self.consumer_runs,
                **{kind: len(self.offsets(kind)) for kind in OUTCOMES}}


@dataclass
class HandlerErrorsRun:
    """Both strategies over the same records: `poison` offsets fail, the rest parse."""

    messages: int
    poison: tuple[int, ...]
    restarts: int
    swallow: StrategyRun
    crash: StrategyRun

    @property
    def first_poison(self) -> int:
        return min(self.poison)

    def summary(self) -> dict:
        return {"messages": self.messages, "poison offsets": list(self.poison),
                "swallow": self.swallow.summary(),
                "crash": {**self.crash.summary(),
                          "poison deliveries": self.crash.deliveries(self.first_poison)}}

    def plot(self):
        """One strip of per-offset outcomes per strategy, with its committed offset and log end."""
        fig, (ax,) = plots.figure(width=10, height=3.2)
        rows = [self.swallow, self.crash]
        for row, strategy in enumerate(rows):
            outcomes = strategy.outcomes
            ax.barh([row] * self.messages, [1] * self.messages, left=list(outcomes), height=0.6,
                    align="center", edgecolor="white",
                    color=[OUTCOMES[outcomes[o]][0] for o in outcomes])
            for offset in sorted(strategy.failed):
                ax.annotate(f"×{strategy.deliveries(offset)}", (offset + 0.5, row),
                            ha="center", va="center", fontsize=8, color="white", weight="bold")
            ax.plot([strategy.committed] * 2, [row - 0.42, row + 0.42], color="black", lw=2.5)
            ax.plot([strategy.log_end] * 2, [row - 0.42, row + 0.42], color="black", lw=1,
                    linestyle="--")
            right = strategy.committed > self.messages / 2
            ax.annotate(f"committed {strategy.committed}, lag {strategy.lag}",
                        (strategy.committed, row - 0.33), xytext=(-4 if right else 4, 0),
                        textcoords="offset points", fontsize=8, va="bottom",
                        ha="right" if right else "left")
        ax.set_yticks(range(len(rows)), [s.name for s in rows])
        ax.set_ylim(len(rows) - 0.25, -0.6)
        ax.set_xlim(0, self.messages + 0.5)
        step = max(1, self.messages // 20)
        ax.set_xticks([o + 0.5 for o in range(0, self.messages, step)],
                      [str(o) for o in range(0, self.messages, step)])
        ax.set_xlabel("offset (solid bar: committed offset, dashed: log end; ×n: deliveries)")
        ax.grid(False)
        ax.legend([Patch(color=colour) for colour, _ in OUTCOMES.values()],
                  [f"{kind}: {meaning}" for kind, (_, meaning) in OUTCOMES.items()],
                  loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=8)
        return plots.finish(fig, "A handler raised: swallowed, the record is lost; "
                                 "let crash, the partition is stuck")


def handle(record) -> None:
    """The handler under test: parse the order (the poison payload does not parse)."""
    json.loads(record.value)


def payloads(messages: int, poison: tuple[int, ...]) -> list[bytes]:
    """An order per offset; the poison offsets carry a truncated payload."""
    return [b'{"order": %d, "email": "buyer@exam' % n if n in poison
            else json.dumps({"order": n, "email": "buyer@example.com"}).encode()
            for n in range(messages)]


async def assigned_consumer(address: str, group: str, partition: TopicPartition):
    """A started consumer of `partition` in `group`, from the group's committed offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=address, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **GROUP_TIMINGS)
    await consumer.start()
    consumer.assign([partition])
    return consumer


async def swallow_loop(consumer, strategy: StrategyRun) -> None:
    """try/except around the handler, log, commit, carry on: to the end of the partition."""
    [partition] = consumer.assignment()
    while await consumer.position(partition) < strategy.log_end:
        for record in (await consumer.getmany(timeout_ms=100)).get(partition, []):
            strategy.delivered.append(record.offset)
            try:
                handle(record)
                strategy.handled.append(record.offset)
            except Exception as exc:
                strategy.log.append(f"offset {record.offset}: {type(exc).__name__}: {exc}")
            await consumer.commit({partition: record.offset + 1})


async def crash_loop(consumer, strategy: StrategyRun) -> None:
    """No try/except: the handler's exception ends the loop before the commit."""
    [partition] = consumer.assignment()
    while await consumer.position(partition) < strategy.log_end:
        for record in (await consumer.getmany(timeout_ms=100)).get(partition, []):
            strategy.delivered.append(record.offset)
            handle(record)
            strategy.handled.append(record.offset)
            await consumer.commit({partition: record.offset + 1})


async def run_strategy(address: str, topic: str, strategy: StrategyRun, loop, runs: int) -> None:
    """Run `loop` in a fresh consumer of one group up to `runs` times, restarting it each time it
    crashes (what a process supervisor does); then read the group's committed offset."""
    group, partition = f"{topic}-{strategy.name}-{uuid.uuid4().hex[:6]}", TopicPartition(topic, 0)
    for _ in range(runs):
        consumer = await assigned_consumer(address, group, partition)
        strategy.consumer_runs += 1
        try:
            strategy.log_end = (await consumer.end_offsets([partition]))[partition]
            await loop(consumer, strategy)
            break
        except ValueError as exc:  # the poison payload's JSONDecodeError, escaped from `loop`
            strategy.log.append(f"consumer crashed: {type(exc).__name__}: {exc}")
        finally:
            await consumer.stop()
    reader = await assigned_consumer(address, group, partition)
    try:
        strategy.committed = await reader.committed(partition) or 0
    finally:
        await reader.stop()


async def scenario(address: str, messages: int, poison: tuple[int, ...], restarts: int):
    async with run_topics(address, retries=0) as topics:
        async with producer(address) as sender:
            for value in payloads(messages, poison):
                await sender.send_and_wait(topics.source, value)
        swallow, crash = StrategyRun("swallow", messages), StrategyRun("crash", messages)
        await all_or_none(
            run_strategy(address, topics.source, swallow, swallow_loop, runs=1),
            run_strategy(address, topics.source, crash, crash_loop, runs=restarts + 1))
    return HandlerErrorsRun(messages, poison, restarts, swallow, crash)


def handler_errors(messages: int = 20, poison: tuple[int, ...] = (5,),
                   restarts: int = 3) -> HandlerErrorsRun:
    """Produce `messages` orders (those at the `poison` offsets do not parse) and consume them
    with each strategy; the crashing consumer is restarted `restarts` times."""
    poison = tuple(sorted(set(poison)))
    if not poison or poison[0] < 0 or poison[-1] >= messages:
        raise ValueError(f"poison offsets must be between 0 and {messages - 1}, got {poison}")
    if restarts < 0:
        raise ValueError("restarts must be >= 0")
    return run(scenario(bootstrap(), messages, poison, restarts), timeout=30 + 2 * restarts)
