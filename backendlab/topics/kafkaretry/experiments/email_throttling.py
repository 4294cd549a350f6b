"""Experiment 6b: the email provider throttles: its 4xx answers are retried with backoff and every
message gets through; a 550 for a mailbox that does not exist goes to the DLT at once.

The notification service sends to an SMTP sink that answers the first `throttled` messages
"421 4.7.0 Too many messages, slow down" (more than there are messages, so some are throttled on
their retry too) and refuses one mailbox with "550 5.1.1 Mailbox unavailable".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from backendlab import plots
from backendlab.topics.kafkaretry import read_topic
from backendlab.topics.kafkaretry.experiments.common import bootstrap, notification_service, run
from backendlab.topics.kafkaretry.notifications.sink import SmtpSink

THROTTLE = "421 4.7.0 Too many messages, slow down"
NO_SUCH = "nobody@example.test"


@dataclass
class ThrottleRun:
    """What was sent, how often each email was refused and retried, what arrived, what died."""

    sent: list[str]
    bounced: str
    throttle_reply: str
    refused: int
    delivered: dict[str, int]  # event id -> times the sink accepted it
    retries: dict[str, int]  # event id -> copies sent to a retry topic
    dead: dict[str, dict[str, str]]  # event id -> the DLT record's x-retry-* headers
    seconds: float

    def summary(self) -> dict:
        """The counts the notebook asserts."""
        return {"sent": len(self.sent) + 1, "throttled answers": self.refused,
                "delivered once": sum(self.delivered.get(i) == 1 for i in self.sent),
                "retries": sum(self.retries.values()), "dead-lettered": sorted(self.dead),
                "seconds": round(self.seconds, 2)}

    def plot(self):
        """Per email: attempts refused with the throttle answer (retried), then delivered or dead."""
        fig, (ax,) = plots.figure(height=3.4)
        ids = [*self.sent, self.bounced]
        labels = [*self.sent, f"{self.bounced} (550)"]
        throttled = [self.retries.get(i, 0) for i in ids]
        ended = [self.delivered.get(i, 0) for i in ids]
        dead = [int(i in self.dead) for i in ids]
        ax.bar(labels, throttled, color=plots.PALETTE[2], label=f"refused: {self.throttle_reply[:9]} (retried)")
        ax.bar(labels, ended, bottom=throttled, color=plots.PALETTE[1], label="delivered")
        ax.bar(labels, dead, bottom=throttled, color="black", label="550: dead-lettered at once")
        ax.axhline(1, color=plots.PALETTE[5], linestyle="--", linewidth=1)
        ax.annotate("one attempt, no throttling", (len(ids) - 0.5, 1), xytext=(0, 3),
                    textcoords="offset points", ha="right", fontsize=8, color=plots.PALETTE[5])
        ax.set_ylabel("attempts per email")
        ax.set_xlabel("email event")
        ax.set_ylim(0, max(t + e + d for t, e, d in zip(throttled, ended, dead)) + 1.2)
        ax.legend(loc="upper left", ncols=3, fontsize=8)
        return plots.finish(fig, "Throttled emails are retried until delivered; only the 550 is "
                                 "dead-lettered")


def _event(event_id: str, to: str) -> bytes:
    return json.dumps({"id": event_id, "type": "email", "user": to.split("@")[0], "to": to,
                       "subject": "Your receipt", "body": "Thanks."}).encode()


async def _scenario(emails: int, throttled: int, max_attempts: int, base_ms: int) -> ThrottleRun:
    address = bootstrap()
    sent = [f"mail-{n}" for n in range(1, emails + 1)]
    async with contextlib.AsyncExitStack() as stack:
        sink = stack.enter_context(SmtpSink(busy_first=throttled, busy_reply=THROTTLE,
                                            unknown={NO_SUCH}))
        topics, kafka, server = await notification_service(stack, address, sink.address,
                                                           max_attempts, base_ms)
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=5))
        clock = time.perf_counter()
        for event_id in sent:
            await kafka.send_and_wait(topics.source, _event(event_id, f"{event_id}@example.test"))
        await kafka.send_and_wait(topics.source, _event("bounce", NO_SUCH))
        deadline = time.monotonic() + base_ms * 2 ** max_attempts / 1000 + 15
        while len({m.id for m in sink.messages}) < emails or \
                (await http.get("/stats")).json()["dead_lettered"] < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"email throttling: not every email delivered or dead-lettered; "
                                   f"service stats {(await http.get('/stats')).json()}")
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - clock
        *retried, dlt = await asyncio.gather(*(read_topic(address, name)
                                               for name in topics.retry_names),
                                             read_topic(address, topics.dlt))
    return ThrottleRun(
        sent=sent, bounced="bounce", throttle_reply=THROTTLE, refused=sink.refused,
        delivered=dict(Counter(m.id for m in sink.messages)),
        retries=dict(Counter(json.loads(r.value)["id"] for records in retried for r in records)),
        dead={json.loads(r.value)["id"]: {name: bytes(value).decode(errors="replace")
                                          for name, value in r.headers
                                          if name.startswith("x-retry-")} for r in dlt},
        seconds=seconds)


def email_throttling(emails: int = 4, throttled: int = 6, max_attempts: int = 4,
                     base_ms: int = 200) -> ThrottleRun:
    """Send `emails` through the notification service to a sink that throttles the first
    `throttled` messages, and one to a mailbox it refuses; stops everything and deletes its topics."""
    if throttled >= emails * (max_attempts - 1):
        raise ValueError("throttled must be under emails x (max_attempts - 1), so that each "
                         "email has an attempt left that gets through")
    return run(_scenario(emails, throttled, max_attempts, base_ms),
               timeout=base_ms * 2 ** max_attempts / 1000 + 45)
