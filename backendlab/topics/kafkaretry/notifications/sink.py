"""An SMTP sink on 127.0.0.1: a real SMTP server (aiosmtpd) that keeps every message it accepts.

It stands in for the email provider (SES) so an experiment can check what was really sent:
recipients, subjects, and how many times each notification arrived. `busy_first=n` answers the
first n messages with `busy_reply` ("451 try again later" unless told, or a provider's throttle
such as "421 4.7.0 too many messages, slow down"), so the sender's retries can be seen;
`unknown` mailboxes are refused with "550 5.1.1 mailbox unavailable", an answer no retry changes.

    with SmtpSink() as sink:
        send_to(sink.address)          # "127.0.0.1:PORT"
        sink.messages                  # [ReceivedEmail(...)]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from backendlab import processes
from backendlab.topics.kafkaretry.router import now_ms
from backendlab.topics.kafkaretry.notifications.mail import ID_HEADER

BUSY = "451 4.3.2 Busy: try again later"
UNKNOWN = "550 5.1.1 Mailbox unavailable"

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO


@dataclass(frozen=True)
class ReceivedEmail:
    """One accepted message; `at_ms` is when the sink accepted it (epoch ms)."""

    id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    at_ms: int


class SmtpSink:
    """An SMTP server on a free loopback port, in a thread of this process."""

    def __init__(self, busy_first: int = 0, busy_reply: str = BUSY,
                 unknown: Iterable[str] = ()):
        if not busy_reply.startswith("4"):
            raise ValueError(f"busy_reply must be a 4xx SMTP answer, not {busy_reply!r}")
        self.busy_left, self.busy_reply, self.unknown = busy_first, busy_reply, frozenset(unknown)
        self.refused = 0
        self._received: list[ReceivedEmail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def address(self) -> str:
        if self._controller is None:
            raise RuntimeError("the sink is not running: call start() or use it in a with-block")
        return f"127.0.0.1:{self._controller.port}"

    @property
    def messages(self) -> list[ReceivedEmail]:
        """The messages accepted so far, in the order they arrived."""
        with self._lock:
            return list(self._received)

    def start(self) -> "SmtpSink":
        self._controller = Controller(self, hostname="127.0.0.1", port=processes.free_port())
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def handle_RCPT(self, _server, _session, envelope, address, _options) -> str:
        """aiosmtpd's hook for each recipient: 550 for an unknown mailbox, else take it."""
        if address in self.unknown:
            return UNKNOWN
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server, _session, envelope) -> str:
        """aiosmtpd's hook for a complete message: keep it, or answer `busy_reply` while busy."""
        with self._lock:
            if self.busy_left > 0:
                self.busy_left -= 1
                self.refused += 1
                return self.busy_reply
            message = message_from_bytes(envelope.content, policy=default_policy)
            body = message.get_body(("plain",))
            self._received.append(ReceivedEmail(
                id=str(message.get(ID_HEADER, "")), sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos), subject=str(message.get("Subject", "")),
                body=body.get_content().strip() if body is not None else "",
                at_ms=now_ms()))
        return "250 Message accepted"
