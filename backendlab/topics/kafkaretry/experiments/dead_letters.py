"""Experiment 4: transient failures climb the retry topics into the DLT, fatal ones go there at
once; the DLT's headers say where each came from and why; once the downstream is fixed, a paced
replay brings the transient ones home, and the fatal ones fail again and go back to the DLT.

A one-partition source gets a mix: in-app notifications (handled locally, always fine), emails
(the SMTP relay is down: ConnectionError or TimeoutError, transient) and bad payloads (not JSON,
a missing field, an unknown event type: fatal). One in-process consumer runs `RetryRouter` in a
`RetryLoop`; the replay is `backendlab.topics.kafkaretry.replay.replay`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from backendlab.topics.kafkaretry.experiments.common import bootstrap, producer, run, run_topics
from backendlab.topics.kafkaretry import (Backoff, FatalError, RetryLoop, RetryPolicy, RetryRouter,
                                          RetryTopics, decode, read_topic, retry_consumer)
from backendlab.topics.kafkaretry.replay import (FROM_HEADER, ReplayReport, busiest_second, rate_of,
                                                 replay)
from backendlab.plots import PALETTE, figure, finish

KINDS = ("healthy", "transient", "fatal")
BAD_PAYLOADS = (  # (what is wrong, value): each fails the same way on every attempt
    ("not JSON", lambda n: b"user u%d signed up" % n),
    ("missing field", lambda n: json.dumps({"id": f"m{n:02d}", "type": "email"}).encode()),
    ("unknown type", lambda n: json.dumps({"id": f"m{n:02d}", "type": "fax",
                                           "user": f"u{n}"}).encode()),
)
OUTCOMES = ("handled", "dlt fatal", "dlt exhausted")
COLUMNS = ("key", "original_topic", "original_partition", "original_offset", "attempts",
           "error_kind", "error", "first_seen_ms", "failed_at_ms", "replayed_from")


@dataclass
class Message:
    """One produced event: `kind` is what it was made to do; `path` the topics it was attempted
    from before the replay; `before` and `after` (None: not replayed) where it ended."""

    key: str
    kind: str
    offset: int
    value: bytes
    path: list[str] = field(default_factory=list)
    before: str = ""
    after: str | None = None


class Mailer:
    """The email downstream: refuses or times out while down, records what it sent once up."""

    def __init__(self):
        self.up = False
        self.calls = 0
        self.sent: list[str] = []

    def send(self, user: str, event_id: str) -> None:
        self.calls += 1
        if not self.up:
            if self.calls % 2:
                raise ConnectionError("SMTP relay refused the connection")
            raise TimeoutError("SMTP relay timed out after 2 s")
        self.sent.append(event_id)


def handler(mailer: Mailer, inbox: list[str]):
    """The notification handler: parse, check the fields, route by type."""
    def handle(record) -> None:
        event = json.loads(record.value)
        event_id, kind, user = event["id"], event["type"], event["user"]
        if kind == "inapp":
            inbox.append(event_id)
        elif kind == "email":
            mailer.send(user, event_id)
        else:
            raise FatalError(f"unknown event type {kind!r}")
    return handle


def mix(healthy: int, transient: int, fatal: int) -> list[tuple[str, str, bytes]]:
    """(key, kind, value) for each event, the kinds interleaved so failures sit between
    healthy events."""
    kinds = ["healthy"] * healthy + ["transient"] * transient + ["fatal"] * fatal
    order = sorted(range(len(kinds)), key=lambda i: (i * 7) % len(kinds))
    events, bad = [], 0
    for n, i in enumerate(order):
        kind, key = kinds[i], f"m{n:02d}"
        if kind == "fatal":
            value = BAD_PAYLOADS[bad % len(BAD_PAYLOADS)][1](n)
            bad += 1
        else:
            body = {"id": key, "type": "inapp" if kind == "healthy" else "email", "user": f"u{n}"}
            value = json.dumps(body).encode()
        events.append((key, kind, value))
    return events


def dlt_row(record) -> dict:
    """A dead-letter record's metadata as a table row (times in epoch ms, as in the headers)."""
    meta = decode(record.headers)
    headers = dict(record.headers)
    replayed = headers.get(FROM_HEADER)
    return {"key": record.key.decode(), "original_topic": meta.original_topic,
            "original_partition": meta.original_partition,
            "original_offset": meta.original_offset, "attempts": meta.attempts,
            "error_kind": meta.error_kind, "error": meta.error,
            "first_seen_ms": meta.first_seen_ms, "failed_at_ms": meta.failed_at_ms,
            "replayed_from": replayed.decode() if replayed else None}


def text_table(rows: list[dict], columns=COLUMNS, started_ms: int | None = None) -> str:
    """Rows as an aligned text table; with `started_ms`, times show as +ms since then."""
    def cell(row, column):
        value = row[column]
        if started_ms is not None and column.endswith("_ms"):
            return f"+{value - started_ms}"
        return "-" if value is None else str(value)

    cells = [[cell(row, c) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


@dataclass
class DeadLettersRun:
    """`dead_letters`: the DLT rows after the first run; `dead_again`: the rows the replay added
    (fatal messages failing again). `rate_per_s`: what the replay was asked for."""

    topics: RetryTopics
    max_attempts: int
    rate_per_s: float
    started_ms: int
    messages: list[Message]
    dead_letters: list[dict]
    dead_again: list[dict]
    replay: ReplayReport
    landed_s: list[float]
    seconds: dict[str, float]

    def landed_rate(self) -> float:
        """Replayed copies per second in the source topic, by their timestamps."""
        return rate_of(self.landed_s)

    def landed_busiest_second(self) -> int:
        return busiest_second(self.landed_s)

    def of(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m.kind == kind]

    @property
    def offsets(self) -> dict[str, int]:
        """{key: offset in the source topic} as produced."""
        return {m.key: m.offset for m in self.messages}

    def rows(self, kind: str, again: bool = False) -> list[dict]:
        """The DLT rows of the messages of `kind`, first run (or the replay's, `again=True`)."""
        keys = {m.key for m in self.of(kind)}
        return [row for row in (self.dead_again if again else self.dead_letters)
                if row["key"] in keys]

    def table(self, again: bool = False, columns=COLUMNS) -> str:
        """The DLT rows as text, times as +ms since the run started."""
        return text_table(self.dead_again if again else self.dead_letters, columns,
                          self.started_ms)

    def counts(self, after: bool = False) -> dict[str, int]:
        """{outcome: messages}, before the replay or after it (a handled message stays handled)."""
        ends = [(m.after or m.before) if after else m.before for m in self.messages]
        return {outcome: ends.count(outcome) for outcome in OUTCOMES}

    def summary(self) -> dict:
        return {"messages": {kind: len(self.of(kind)) for kind in KINDS},
                "before replay": self.counts(), "after replay": self.counts(after=True),
                "replayed": len(self.replay.moved),
                "replay rate /s": round(self.replay.measured_rate(), 1),
                "landed rate /s": round(self.landed_rate(), 1),
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}

    def plot(self):
        """Left: each message's end before and after the replay. Right: the replay's copies over
        time against the asked-for rate."""
        fig, (fates, pace) = figure(ncols=2, width=11, height=3.6)
        colours = dict(zip(OUTCOMES, (PALETTE[4], PALETTE[0], PALETTE[2])))
        for row, attribute in ((1, "before"), (0, "after")):
            for m in self.messages:
                outcome = getattr(m, attribute) or m.before
                fates.scatter(m.offset, row, s=140, marker="s", color=colours[outcome])
        for outcome, colour in colours.items():
            fates.scatter([], [], s=80, marker="s", color=colour, label=outcome)
        fates.set_yticks([0, 1], ["after replay", "first self"])
        fates.set_ylim(-0.6, 1.6)
        fates.set_xlabel("offset in the source topic")
        fates.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=9)
        fates.set_title("Where each message ended", fontsize=10)
        times = self.replay.send_times
        pace.step(times, range(1, len(times) + 1), where="post", color=PALETTE[1], label="copies sent")
        if times:
            pace.plot([0, times[-1]], [1, 1 + times[-1] * self.rate_per_s], "--", color=PALETTE[5],
                      label=f"{self.rate_per_s:g} per second")
        pace.set_xlabel("seconds since the replay started")
        pace.set_ylabel("copies sent")
        pace.legend(fontsize=9)
        pace.set_title("The replay, paced", fontsize=10)
        return finish(fig, "Dead letters: transient ones come back, fatal ones return to the DLT")


def dead_letters(healthy: int = 6, transient: int = 4, fatal: int = 3, *, max_attempts: int = 3,
                 base_ms: int = 100, rate_per_s: float = 20.0,
                 timeout: float = 30.0) -> DeadLettersRun:
    """Produce the mix, run the retry consumer until every message has ended somewhere (backoff
    `base_ms`, doubling, no jitter), fix the mailer, replay the DLT to the source at `rate_per_s`
    while the consumer runs, and wait until every replayed message has ended again."""
    policy = RetryPolicy(max_attempts=max_attempts,
                         backoff=Backoff(base_ms=base_ms, cap_ms=base_ms * 2 ** max_attempts,
                                         jitter=False))
    return run(_scenario(bootstrap(), mix(healthy, transient, fatal), policy, rate_per_s, timeout),
               timeout=timeout + 15)


async def _scenario(address: str, events, policy: RetryPolicy, rate_per_s: float,
                    timeout: float) -> DeadLettersRun:
    clock, started_ms = time.perf_counter(), int(time.time() * 1000)
    seconds: dict[str, float] = {}
    mailer, inbox = Mailer(), []
    handle = handler(mailer, inbox)
    async with run_topics(address, retries=policy.retries) as topics, \
            producer(address, acks="all") as sender:
        messages = {}
        for key, kind, value in events:
            meta = await sender.send_and_wait(topics.source, value, key=key.encode())
            messages[key] = Message(key, kind, meta.offset, value)
        async with retry_consumer(address, topics) as consumer:
            router = RetryRouter(sender, consumer, topics, policy)
            replaying = False

            async def process(record) -> None:
                message = messages[record.key.decode()]
                if not replaying:
                    message.path.append(record.topic)
                route = await router.process(record, handle)
                outcome = "handled" if route is None else f"dlt {route.reason}" if route.dead \
                    else None
                if outcome:
                    setattr(message, "after" if replaying else "before", outcome)

            loop = RetryLoop(consumer, topics, process)
            await loop.run(until=lambda: all(m.before for m in messages.values()), timeout=timeout)
            seconds["first run"] = time.perf_counter() - clock
            first = [dlt_row(r) for r in await read_topic(address, topics.dlt)]

            mailer.up, replaying = True, True
            mark = time.perf_counter()
            dead = {row["key"] for row in first}
            moving = asyncio.create_task(replay(address, topics.dlt, rate_per_s=rate_per_s))

            def replayed() -> bool:
                return moving.done() and (moving.exception() is not None
                                          or all(messages[k].after for k in dead))

            try:
                await loop.run(until=replayed, timeout=timeout)
            finally:
                moving.cancel()  # only when the loop failed: otherwise it is done
            report = moving.result()
            seconds["replay"] = time.perf_counter() - mark
        again = [dlt_row(r) for r in await read_topic(address, topics.dlt)][len(first):]
        stamps = sorted(r.timestamp for r in await read_topic(address, topics.source)
                        if any(name == FROM_HEADER for name, _ in r.headers or ()))
    seconds["total"] = time.perf_counter() - clock
    return DeadLettersRun(topics, policy.max_attempts, rate_per_s, started_ms,
                          list(messages.values()), first, again, report,
                          [(t - stamps[0]) / 1000 for t in stamps], seconds)
