"""An SMTP sink on 127.0.0.1: a real SMTP server (aiosmtpd) that keeps every message it accepts.

It stands in for the email provider (SES) so an experiment can check what was really sent:
recipients, subjects, and how many times each notification arrived. `busy_first=n` answers the
first n messages with "451 try again later", the throttling answer a provider gives, so the
sender's retries can be seen.

    with SmtpSink() as sink:
        send_to(sink.address)          # "127.0.0.1:PORT"
        sink.messages                  # [ReceivedEmail(...)]
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from backendlab import processes
from backendlab.topics.kafkaretry.router import now_ms
from backendlab.topics.kafkaretry.notifications.mail import ID_HEADER

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

    def __init__(self, busy_first: int = 0):
        self.busy_left = busy_first
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

    async def handle_DATA(self, _server, _session, envelope) -> str:
        """aiosmtpd's hook for a complete message: keep it, or answer 451 while busy."""
        with self._lock:
            if self.busy_left > 0:
                self.busy_left -= 1
                self.refused += 1
                return "451 4.3.2 Busy: try again later"
            message = message_from_bytes(envelope.content, policy=default_policy)
            body = message.get_body(("plain",))
            self._received.append(ReceivedEmail(
                id=str(message.get(ID_HEADER, "")), sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos), subject=str(message.get("Subject", "")),
                body=body.get_content().strip() if body is not None else "",
                at_ms=now_ms()))
        return "250 Message accepted"
