"""Replay a dead-letter topic: copy its records back where they came from, paced, once per group.

Once the cause of the failures is fixed (the email provider is back, the handler's bug is
deployed), the dead letters are worth another try. `replay` reads the DLT under a consumer group,
republishes each record (same key and value, its own headers kept, the `x-retry-*` ones replaced by
`x-replayed-from: <dlt>:<partition>:<offset>` and `x-replayed-at-ms`) to `to` or to the topic named
in its `x-retry-original-topic`, and commits the DLT offset only after the broker acknowledged the
copy: a crash in between gives a duplicate, never a loss, and a replay that ran is not repeated.
A copy's partition follows from its key, as the original's did.

It plans before it moves: it reads the records between the group's committed offsets and the end
offsets seen at the start (at most `limit`), and refuses the whole replay (ValueError, nothing sent,
nothing committed) when one of them has no destination or a destination topic does not exist.
Skipping such a record cannot work: committing the records after it would commit it too.
Copies go out at most `rate_per_s` per second, evenly spaced, so the service that just recovered is
not flooded with the whole backlog at once. One `timeout` bounds the whole run, from connecting to
the last commit. A record's null header values stay null in its copy.

Run one replay at a time per group. A replay reads the DLT by assigning itself every partition,
which gives no exclusion: two replays started together under the same group both move every
record, and every record arrives twice.

    report = await replay(bootstrap, "orders.dlt", rate_per_s=20)
    report.moved[0].source, report.moved[0].destination, report.measured_rate()
"""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import dataclass, field
from typing import Callable

from backendlab.topics.kafkaretry.headers import PREFIX, decode, own_headers
from backendlab.topics.kafkaretry.reading import read_to
from backendlab.topics.kafkaretry.router import now_ms

REPLAY_PREFIX = "x-replayed-"
FROM_HEADER = "x-replayed-from"
AT_HEADER = "x-replayed-at-ms"
# Without a timeout: the seconds allowed for connecting and planning, before the paced sends.
PLAN_S = 30.0


def default_group(dlt: str) -> str:
    """The consumer group a replay of `dlt` commits under unless told otherwise."""
    return f"{dlt}.replay"


@dataclass(frozen=True)
class Moved:
    """One record copied: `source` is `<dlt>:<partition>:<offset>`, `destination` the same for the
    copy; `sent_at` is seconds since the replay started sending."""

    source: str
    destination: str
    key: bytes | None
    sent_at: float


def rate_of(times: list[float]) -> float:
    """Events per second between the first and the last of `times` (seconds, sorted)."""
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def busiest_second(times: list[float]) -> int:
    """The most of `times` (seconds, sorted) inside any window of one second."""
    first, most = 0, 0
    for last, at in enumerate(times):
        while at - times[first] > 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


@dataclass
class ReplayReport:
    """What one replay did. `already_replayed`: records before the group's committed offsets (moved
    by an earlier replay); `remaining`: records up to the start's end offsets left by `limit`."""

    dlt: str
    group: str
    rate_per_s: float
    moved: list[Moved] = field(default_factory=list)
    already_replayed: int = 0
    remaining: int = 0

    @property
    def send_times(self) -> list[float]:
        return [m.sent_at for m in self.moved]

    def measured_rate(self) -> float:
        """Copies per second between the first and the last send (0 for fewer than two)."""
        return rate_of(self.send_times)

    def busiest_second(self) -> int:
        """The most sends inside any window of one second (at most rate + 1 when paced)."""
        return busiest_second(self.send_times)

    def summary(self) -> dict:
        return {"dlt": self.dlt, "group": self.group, "moved": len(self.moved),
                "already_replayed": self.already_replayed, "remaining": self.remaining,
                "rate_per_s": self.rate_per_s, "measured_rate": round(self.measured_rate(), 2),
                "busiest_second": self.busiest_second()}


def replay_headers(headers, source: str, at_ms: int) -> list[tuple[str, bytes | None]]:
    """The record's own headers (null values kept) without the retry metadata or an older
    replay's, then the new replay headers."""
    return own_headers(headers, PREFIX, REPLAY_PREFIX) + [(FROM_HEADER, source.encode()),
                                                          (AT_HEADER, str(at_ms).encode())]


def destination(record, to: str | None) -> str:
    """`to`, or the topic the record was dead-lettered from; ValueError when there is neither."""
    if to is not None:
        return to
    try:
        meta = decode(record.headers)
    except ValueError as exc:
        meta, why = None, str(exc)
    else:
        why = "it has no x-retry-original-topic header"
    if meta is None:
        raise ValueError(f"record {where(record)} has no original topic ({why}); pass "
                         f"to=TOPIC (--to TOPIC) to say where its records go; nothing was replayed")
    return meta.original_topic


def where(record) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


class Pacer:
    """Waits so that sends are at least `1 / rate_per_s` seconds apart, the first one at once."""

    def __init__(self, rate_per_s: float):
        self.interval = 1.0 / rate_per_s
        self.last: float | None = None

    async def wait(self) -> float:
        """Sleep until the next send may go; returns the send time (time.perf_counter)."""
        if self.last is not None:
            delay = self.last + self.interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        self.last = time.perf_counter()
        return self.last


def check_arguments(rate_per_s: float, limit: int | None, timeout: float | None = None) -> None:
    """ValueError with a suggestion when a replay argument is out of range."""
    if not rate_per_s > 0:
        raise ValueError(f"rate must be more than 0 records per second, got {rate_per_s}; "
                         "try 10 (the default)")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}; leave it out to replay everything")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be more than 0 seconds, got {timeout}; leave it out for "
                         "30 s plus the paced time")


async def replay(bootstrap: str, dlt: str, *, to: str | None = None, rate_per_s: float = 10.0,
                 limit: int | None = None, group: str | None = None,
                 timeout: float | None = None,
                 on_moved: Callable[[Moved], None] | None = None) -> ReplayReport:
    """Copy the records of `dlt` not yet replayed by `group` (default `<dlt>.replay`) to `to` or
    their original topic, at most `rate_per_s` a second, at most `limit` of them. `timeout`
    (default: 30 s plus the paced time of the planned records) bounds the whole replay, from
    connecting to the last commit: TimeoutError, with every record moved so far committed.
    `on_moved(moved)` is called after each commit. Run one replay at a time per group."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    check_arguments(rate_per_s, limit, timeout)
    group = group or default_group(dlt)
    report = ReplayReport(dlt, group, rate_per_s)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, fetch_max_wait_ms=20)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        async with asyncio.timeout(PLAN_S if timeout is None else timeout) as budget:
            await consumer.start()
            await producer.start()
            plan = await _plan(consumer, dlt, to, limit, report)
            if timeout is None:
                budget.reschedule(budget.when() + len(plan) / rate_per_s)
            await _move(consumer, producer, plan, report, on_moved)
        return report
    except TimeoutError:
        if not budget.expired():
            raise
        raise TimeoutError(f"the replay ran out of time after moving {len(report.moved)} records "
                           "(each committed); run it again to move the rest") from None
    finally:
        await producer.stop()
        await consumer.stop()


async def _plan(consumer, dlt: str, to: str | None, limit: int | None,
                report: ReplayReport) -> list[tuple[object, str]]:
    """(record, destination) for each record to move, in time order; ValueError before anything
    moves when the DLT, a destination or a destination topic is missing."""
    from aiokafka import TopicPartition

    existing = await consumer.topics()
    if dlt not in existing:
        dead = sorted(name for name in existing if name.endswith(".dlt"))
        raise ValueError(f"dead-letter topic {dlt!r} does not exist on this broker; "
                         f"dead-letter topics here: {', '.join(dead) or 'none'}")
    partitions = [TopicPartition(dlt, p) for p in sorted(consumer.partitions_for_topic(dlt))]
    consumer.assign(partitions)
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        committed = await consumer.committed(tp)
        start = max(starts[tp], committed or 0)
        report.already_replayed += max(0, min(start, ends[tp]) - starts[tp])
        consumer.seek(tp, start)
    found = await read_to(consumer, partitions, ends)
    # Merged by timestamp; each partition stays in offset order, so its commits only move forward.
    records = list(heapq.merge(*found.values(), key=lambda r: r.timestamp))
    chosen = records if limit is None else records[:limit]
    report.remaining = len(records) - len(chosen)
    plan = [(record, destination(record, to)) for record in chosen]
    missing = sorted({topic for _, topic in plan} - existing)
    if missing:
        raise ValueError(f"destination topic {', '.join(missing)} does not exist; create it or "
                         "pass to=TOPIC (--to TOPIC); nothing was replayed")
    return plan


async def _move(consumer, producer, plan, report: ReplayReport, on_moved) -> None:
    """Send each planned copy when the pacer allows, wait for its acknowledgement, then commit."""
    from aiokafka import TopicPartition

    pacer, started = Pacer(report.rate_per_s), time.perf_counter()
    for record, topic in plan:
        sent = await pacer.wait()
        source = where(record)
        headers = replay_headers(record.headers, source, now_ms())
        meta = await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)
        await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
        moved = Moved(source, f"{meta.topic}:{meta.partition}:{meta.offset}", record.key,
                      sent - started)
        report.moved.append(moved)
        if on_moved is not None:
            on_moved(moved)


def _why(exc: BaseException) -> str:
    text = str(exc) or "no answer in time"
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


def _key_text(key: bytes | None) -> str:
    return "-" if key is None else key.decode(errors="replace")


def main(argv: list[str]) -> int:
    """`backendlab kafka-replay --dlt TOPIC [--to TOPIC] [--rate N] [--limit N]
    [--bootstrap HOST:PORT]`: one line per moved record, then a total; 2 on bad input."""
    import argparse
    import logging

    from aiokafka.errors import KafkaError

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its errors come back as one line
    prog = "backendlab kafka-replay"
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n")[0],
        epilog="Run one replay at a time per group: two at once both move every record.")
    parser.add_argument("--dlt", required=True, help="the dead-letter topic to replay")
    parser.add_argument("--to", help="send every record here (default: its x-retry-original-topic)")
    parser.add_argument("--rate", type=float, default=10.0, help="records per second (default 10)")
    parser.add_argument("--limit", type=int, help="move at most this many records")
    parser.add_argument("--group", help="consumer group (default: <dlt>.replay); run one replay "
                                        "at a time per group")
    parser.add_argument("--timeout", type=float,
                        help="seconds for the whole replay (default: 30 + the paced time)")
    parser.add_argument("--bootstrap", help="HOST:PORT (default: KAFKA_BOOTSTRAP_SERVERS, else the "
                                            "embedded broker a parent process shares)")
    args = parser.parse_args(argv)

    def show(moved: Moved) -> None:
        print(f"moved {moved.source} -> {moved.destination} key={_key_text(moved.key)}", flush=True)

    try:
        check_arguments(args.rate, args.limit, args.timeout)
    except ValueError as exc:
        parser.exit(2, f"{prog}: error: {exc}\n")
    from backendlab.services.kafka import existing_broker

    bootstrap = args.bootstrap or existing_broker()
    if bootstrap is None:
        parser.exit(2, f"{prog}: error: no broker named: pass --bootstrap HOST:PORT or set "
                       "KAFKA_BOOTSTRAP_SERVERS (an embedded broker started now would be empty)\n")
    try:
        report = asyncio.run(replay(bootstrap, args.dlt, to=args.to, rate_per_s=args.rate,
                                    limit=args.limit, group=args.group, timeout=args.timeout,
                                    on_moved=show))
    except ValueError as exc:
        parser.exit(2, f"{prog}: error: {exc}\n")
    except (KafkaError, OSError, TimeoutError, RuntimeError) as exc:
        parser.exit(1, f"{prog}: failed: {_why(exc)}\n")
    elapsed = report.send_times[-1] if report.moved else 0.0
    print(f"replayed {len(report.moved)} records from {report.dlt} (group {report.group}) in "
          f"{elapsed:.2f} s, {report.measured_rate():.1f}/s; {report.already_replayed} replayed "
          f"earlier, {report.remaining} left by --limit")
    return 0
