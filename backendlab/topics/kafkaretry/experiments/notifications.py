"""Experiment 6: the notification router as a real service, with its retries, its DLT and the order
they cost.

The service (`backendlab serve notifications`) consumes an events topic; real WebSocket
clients connect as users; an SMTP sink in this process stands in for SES and answers the first
email "451 busy". Then events go in: emails, pushes to users online, pushes to a user who comes
online a second later (retried with backoff, delivered once connected), a push to a user who never
connects (dead-lettered after the last attempt), an unknown type and a bad payload (to the DLT at
once, never retried).

The ordering caveat. Retry topics keep the source flowing: a failed event leaves its partition for
`<topic>.retry.1`, so the events behind it, the same user's included, are handled at once. Kafka's
per-key order is gone: user dana's e1 fails (she is offline at that instant), e2 and e3 arrive once
she is online and reach her first, e1 comes back after its backoff and arrives last. To keep a
key's order, hold a key's later events while an earlier one is retrying (send them after it to
the retry topic, or park them until it succeeds or is dead-lettered), or retry in place, blocking
the partition: both cost latency (the held events wait out the backoff too; in place, every key
of the partition waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import websockets
from websockets.asyncio.client import connect

from backendlab import plots
from backendlab import progressbar
from backendlab.topics.kafkaretry.experiments.common import bootstrap, notification_service, run
from backendlab.topics.kafkaretry import decode, read_topic
from backendlab.topics.kafkaretry.router import now_ms
from backendlab.topics.kafkaretry.notifications.sink import ReceivedEmail, SmtpSink

ONLINE = ("ana", "ben")  # connected from the start
ORDERED = "dana"  # offline for her first event only: the ordering caveat
LATE = "late"  # connects `late_after` seconds after its pushes were sent
NEVER = "ghost"  # never connects: its push ends in the DLT
EMAILS = [("email-1", "ana@example.test", "Your form was received"),
          ("email-2", "ben@example.test", "Weekly summary"),
          ("email-3", "carol@example.test", "Password changed")]
BAD_JSON_KEY = "bad-json"


@dataclass(frozen=True)
class Sent:
    """An event the experiment produced (bad ones too), and when (epoch ms)."""

    id: str
    type: str
    user: str
    at_ms: int


@dataclass(frozen=True)
class Push:
    """A push as a client received it, and when (epoch ms)."""

    user: str
    id: str
    at_ms: int


@dataclass(frozen=True)
class Failure:
    """A failed attempt as the retry manager recorded it in a retry topic or the DLT."""

    id: str
    attempt: int
    kind: str
    error: str
    failed_at_ms: int
    due_ms: int | None
    dead: bool


@dataclass(frozen=True)
class DeadNotification:
    """A record of the DLT: the event id (or the record's key when the value does not parse),
    its value and every header, as text."""

    id: str
    value: bytes
    headers: dict[str, str]

    @property
    def attempts(self) -> int:
        return int(self.headers["x-retry-attempts"])

    @property
    def kind(self) -> str:
        return self.headers["x-retry-error-kind"]


@dataclass
class NotificationRun:
    """What one run sent, what the sink and the clients received, and where failures went."""

    started_ms: int
    max_attempts: int
    base_ms: int
    sent: list[Sent]
    emails: list[ReceivedEmail]
    pushes: list[Push]
    connected_ms: dict[str, int]
    failures: list[Failure]
    dead: list[DeadNotification]
    stats: dict
    seconds: float

    def sent_ids(self, kind: str, user: str | None = None) -> list[str]:
        """Ids of the events of `kind` ("email", "push") sent, for one user or all, in order."""
        return [s.id for s in self.sent if s.type == kind and user in (None, s.user)]

    def email_counts(self) -> dict[str, int]:
        """{event id: times the sink accepted it}."""
        return dict(Counter(email.id for email in self.emails))

    def pushes_to(self, user: str) -> list[Push]:
        return [push for push in self.pushes if push.user == user]

    def push_counts(self, user: str) -> dict[str, int]:
        """{event id: times `user`'s client received it}."""
        return dict(Counter(push.id for push in self.pushes_to(user)))

    def retries_of(self, event_id: str) -> int:
        """Failed attempts of an event that were sent to a retry topic."""
        return sum(1 for f in self.failures if f.id == event_id and not f.dead)

    def dead_letters(self) -> dict[str, tuple[int, str]]:
        """{id: (x-retry-attempts, x-retry-error-kind)} of each DLT record."""
        return {d.id: (d.attempts, d.kind) for d in self.dead}

    def out_of_order(self, user: str) -> int:
        """Pushes `user` received after a push that was sent later than them."""
        rank = {s.id: n for n, s in enumerate(self.sent)}
        latest, late = -1, 0
        for push in self.pushes_to(user):
            late += rank[push.id] < latest
            latest = max(latest, rank[push.id])
        return late

    def summary(self) -> dict:
        return {"emails delivered": len(self.emails), "pushes delivered": len(self.pushes),
                "retries": sum(not f.dead for f in self.failures),
                "dead-lettered": len(self.dead),
                "out of order": {user: self.out_of_order(user)
                                 for user in sorted({p.user for p in self.pushes})},
                "seconds": round(self.seconds, 2)}

    def plot(self):
        """One lane per channel and user: sent (|), failed attempts (x) joined to where the event
        ended, deliveries (o; dana's labelled by send order), dead letters (v); shaded while online."""
        fig, (ax,) = plots.figure(width=10, height=4.2)
        row = {lane: n for n, lane in enumerate(reversed(LANES))}
        by_id = {sent.id: sent for sent in self.sent}

        def seconds(ms: int) -> float:
            return (ms - self.started_ms) / 1000

        delivered = {e.id: (seconds(e.at_ms), "email (SMTP)") for e in self.emails}
        delivered |= {p.id: (seconds(p.at_ms), f"push {p.user}") for p in self.pushes}
        end = max([at for at, _ in delivered.values()]
                  + [seconds(f.failed_at_ms) for f in self.failures]) + 0.2
        for user, at in self.connected_ms.items():
            if at is not None:
                y = row[f"push {user}"]
                ax.fill_betweenx([y - 0.3, y + 0.3], seconds(at), end, color=plots.PALETTE[4],
                                 alpha=0.15, linewidth=0)
        for sent in self.sent:
            ax.plot(seconds(sent.at_ms), row[_lane(sent)], "|", color=plots.PALETTE[5],
                    markersize=12)
        for event_id in dict.fromkeys(f.id for f in self.failures):
            attempts = sorted(f.failed_at_ms for f in self.failures if f.id == event_id)
            lane = _lane(by_id.get(event_id))
            path = [seconds(ms) for ms in attempts] + [delivered.get(event_id, (None,))[0]]
            path = [x for x in path if x is not None]
            ax.plot(path, [row[lane]] * len(path), ":", color=plots.PALETTE[0], linewidth=1)
            ax.plot(path[: len(attempts)], [row[lane]] * len(attempts), "x", color=plots.PALETTE[0],
                    markersize=8, zorder=3)
        for at, lane in delivered.values():
            ax.plot(at, row[lane], "o", color=plots.PALETTE[1], markersize=7, zorder=2)
        rank = {sent.id: n + 1 for n, sent in enumerate(s for s in self.sent if s.user == ORDERED)}
        for n, push in enumerate(self.pushes_to(ORDERED)):
            ax.annotate(f"e{rank[push.id]}", (seconds(push.at_ms), row[f"push {ORDERED}"]),
                        fontsize=8, xytext=(-5, 7 if n % 2 == 0 else -15), textcoords="offset points")
        for n, dead in enumerate(f for f in self.failures if f.dead):
            ax.plot(seconds(dead.failed_at_ms), row["DLT"], "v", color="black", markersize=8)
            ax.annotate(dead.id, (seconds(dead.failed_at_ms), row["DLT"]), fontsize=7,
                        xytext=(4, 4 + 8 * (n % 2)), textcoords="offset points")
        for marker, color, label in (("|", plots.PALETTE[5], "sent"),
                                     ("x", plots.PALETTE[0], "failed attempt"),
                                     ("o", plots.PALETTE[1], "delivered"),
                                     ("v", "black", "dead-lettered")):
            ax.plot([], [], marker, color=color, label=label, linestyle="none")
        ax.fill_between([], [], color=plots.PALETTE[4], alpha=0.15, label="user online")
        ax.set_yticks(list(row.values()), list(row.keys()))
        ax.set_ylim(-0.6, len(LANES) - 0.4)
        ax.set_xlim(-0.1, end)
        ax.set_xlabel("seconds since the first event")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        counts = self.summary()
        return plots.finish(fig, f"{counts['emails delivered']} emails and {counts['pushes delivered']} "
                                 f"pushes delivered through {counts['retries']} retries; "
                                 f"{counts['dead-lettered']} dead-lettered")


class PushClient:
    """One user's WebSocket connection to the service, recording each push with its arrival."""

    def __init__(self, base_url: str, user: str):
        self.url = base_url.replace("http://", "ws://", 1) + f"/ws/{user}"
        self.user = user
        self.received: list[Push] = []
        self.connected_ms: int | None = None
        self._socket = None
        self._listening: asyncio.Task | None = None

    async def connect(self) -> None:
        """Connect and wait for the welcome: from then on the service pushes to this socket."""
        self._socket = await connect(self.url, open_timeout=10)
        welcome = json.loads(await asyncio.wait_for(self._socket.recv(), 10))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"{self.user}: expected a welcome first, got {welcome}")
        self.connected_ms = now_ms()
        self._listening = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self._socket:
                self.received.append(Push(self.user, json.loads(text)["id"], now_ms()))

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._listening is not None:
            await self._listening


def _failures(records, dead: bool) -> list[Failure]:
    out = []
    for record in records:
        meta = decode(record.headers)
        out.append(Failure(_event_id(record), meta.attempts, meta.error_kind, meta.error,
                           meta.failed_at_ms, meta.due_ms, dead))
    return out


def _event_id(record) -> str:
    try:
        return str(json.loads(record.value)["id"])
    except (ValueError, TypeError, KeyError):
        return (record.key or b"").decode(errors="replace")


class _Scenario:
    """The run's moving parts: the service, the clients, what was sent, and what arrived."""

    def __init__(self, server_url: str, topic: str, kafka, sink: SmtpSink):
        self.topic, self.kafka, self.sink = topic, kafka, sink
        self.http = httpx.AsyncClient(base_url=server_url, timeout=5)
        self.clients = {user: PushClient(server_url, user) for user in (*ONLINE, ORDERED, LATE)}
        self.sent: list[Sent] = []

    async def send(self, event_id: str, kind: str, user: str, **fields) -> None:
        body = json.dumps({"id": event_id, "type": kind, "user": user, **fields}).encode()
        await self.send_raw(event_id, kind, user, body)

    async def send_raw(self, event_id: str, kind: str, user: str, value: bytes) -> None:
        """Produce with the user as key: one user's events share a partition, in order."""
        self.sent.append(Sent(event_id, kind, user, now_ms()))
        await self.kafka.send_and_wait(self.topic, value, key=user.encode())

    async def stats(self) -> dict:
        return (await self.http.get("/stats")).json()

    async def wait_for(self, done, what: str, timeout: float, then=None) -> None:
        """Poll every 20 ms until `done()`; `then()` runs each round (connecting a late user)."""
        deadline = time.monotonic() + timeout
        while not await done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"notification router: {what} within {timeout} s; "
                                   f"service stats {await self.stats()}")
            if then is not None:
                await then()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.http.aclose()


async def _scenario(max_attempts: int, base_ms: int, late_after: float, patience: float,
                    bar) -> NotificationRun:
    address = bootstrap()
    async with contextlib.AsyncExitStack() as stack:
        sink = stack.enter_context(SmtpSink(busy_first=1))
        topics, kafka, server = await notification_service(stack, address, sink.address,
                                                           max_attempts, base_ms)
        scene = _Scenario(server.url, topics.source, kafka, sink)
        stack.push_async_callback(scene.close)
        clients = scene.clients
        bar.update()

        await asyncio.gather(*(clients[user].connect() for user in ONLINE))
        started, clock = now_ms(), time.perf_counter()
        await scene.send(f"{ORDERED}-1", "push", ORDERED, text="first")
        await scene.wait_for(lambda: _retried(scene, 1), "dana's first push did not fail", 10)
        await clients[ORDERED].connect()
        await scene.send(f"{ORDERED}-2", "push", ORDERED, text="second")
        await scene.send(f"{ORDERED}-3", "push", ORDERED, text="third")
        for event_id, to, subject in EMAILS:
            await scene.send(event_id, "email", to.split("@")[0], to=to, subject=subject,
                             body=f"{subject}.")
        await scene.send("ana-1", "push", "ana", text="your report is ready")
        await scene.send("ben-1", "push", "ben", text="a comment on your form")
        await scene.send("ben-2", "push", "ben", text="a second comment")
        await scene.send(f"{LATE}-1", "push", LATE, text="sent while offline")
        await scene.send(f"{LATE}-2", "push", LATE, text="also sent while offline")
        late_at = time.monotonic() + late_after
        await scene.send(f"{NEVER}-1", "push", NEVER, text="nobody will read this")
        await scene.send("bad-type", "sms", "ana", text="no such channel")
        await scene.send_raw(BAD_JSON_KEY, "bad payload", BAD_JSON_KEY, b'{"id": "oops", "type":')
        bar.update()

        async def connect_late() -> None:
            if clients[LATE].connected_ms is None and time.monotonic() >= late_at:
                await clients[LATE].connect()

        expected_pushes = sum(s.type == "push" and s.user != NEVER for s in scene.sent)
        await scene.wait_for(lambda: _finished(scene, expected_pushes),
                             "not every event was delivered or dead-lettered", patience,
                             connect_late)
        seconds = time.perf_counter() - clock
        bar.update()

        *retried, dead = await asyncio.gather(  # each read waits out a fetch: read at once
            *(read_topic(address, name) for name in topics.retry_names),
            read_topic(address, topics.dlt))
        stats = await scene.stats()
        bar.update()
    return NotificationRun(
        started_ms=started, max_attempts=max_attempts, base_ms=base_ms, sent=scene.sent,
        emails=sink.messages, pushes=sorted((p for c in clients.values() for p in c.received),
                                            key=lambda p: p.at_ms),
        connected_ms={u: c.connected_ms for u, c in clients.items()},
        failures=_failures([r for records in retried for r in records], dead=False)
        + _failures(dead, dead=True),
        dead=[DeadNotification(_event_id(r), r.value,
                               {name: bytes(value).decode(errors="replace")
                                for name, value in r.headers})
              for r in dead],
        stats=stats, seconds=seconds)


async def _retried(scene: _Scenario, count: int) -> bool:
    return (await scene.stats())["retried"] >= count


async def _finished(scene: _Scenario, pushes: int) -> bool:
    """Every email in the sink, every deliverable push received, and three events in the DLT
    (the never-connected user's push, the unknown type, the bad payload)."""
    received = sum(len(client.received) for client in scene.clients.values())
    if len(scene.sink.messages) < len(EMAILS) or received < pushes:
        return False
    return (await scene.stats())["dead_lettered"] >= 3


def notification_router(max_attempts: int = 3, base_ms: int = 600, late_after: float = 1.0, *,
                        progress: bool = True) -> NotificationRun:
    """Run the notification service end to end (see the module docstring); everything it starts
    stops and its topics are deleted when it returns.

    Backoff has no jitter, so the timeline reads plainly: retry n waits `base_ms * 2**(n-1)`.
    The late user connects `late_after` s after its pushes were sent: before their last attempt."""
    if max_attempts < 2:
        raise ValueError("max_attempts must be at least 2: the experiment shows retries")
    backoff_s = base_ms * (2 ** (max_attempts - 1) - 1) / 1000  # first attempt to last
    if not 0 <= late_after < backoff_s:
        raise ValueError(f"late_after must be under {backoff_s:g} s, the time from a push's first "
                         f"attempt to its last with these settings, or the late user's pushes "
                         f"are dead-lettered")
    with progressbar.progress(4, "notification router", progress) as bar:
        return run(_scenario(max_attempts, base_ms, late_after, backoff_s + 15, bar),
                   timeout=backoff_s + 60)


LANES = ["email (SMTP)", *(f"push {user}" for user in (*ONLINE, ORDERED, LATE, NEVER)), "DLT"]


def _lane(sent: Sent | None) -> str:
    """The timeline lane of an event: its channel and user, or the DLT for a bad one."""
    if sent is None or sent.type not in ("email", "push"):
        return "DLT"
    return "email (SMTP)" if sent.type == "email" else f"push {sent.user}"
