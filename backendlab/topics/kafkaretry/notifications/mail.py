"""The email channel: an event becomes a message sent over SMTP (as to SES's SMTP interface).

smtplib is blocking, so each send runs in a worker thread and the consumer's event loop stays free.
Failures are sorted the way an email provider means them: a refused or dropped connection, a
timeout or a 4xx answer ("try again later", throttling) is transient; a 5xx answer (recipient does
not exist, message rejected) or an event without a usable address is fatal.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from backendlab.topics.kafkaretry import FatalError, TransientError
from backendlab.topics.kafkaretry.notifications.events import Event

ID_HEADER = "X-Notification-Id"


def _text(event: Event, field: str, limit: int) -> str:
    value = event.payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise FatalError(f"bad email event: {field!r} must be a non-empty string")
    if len(value) > limit:
        raise FatalError(f"bad email event: {field!r} is longer than {limit} characters")
    return value


def _header(event: Event, field: str, limit: int) -> str:
    value = _text(event, field, limit)
    if "\r" in value or "\n" in value:  # a line break would let the event write its own headers
        raise FatalError(f"bad email event: {field!r} contains a line break")
    return value


def compose(event: Event, sender: str) -> EmailMessage:
    """The message for an email event (`to`, `subject`, `body`); FatalError when one is unusable."""
    to = _header(event, "to", 254)
    if to.count("@") != 1 or " " in to:
        raise FatalError(f"bad email event: 'to' is not an address: {to[:60]!r}")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = _header(event, "subject", 200)
    message[ID_HEADER] = event.id
    message.set_content(_text(event, "body", 100_000))
    return message


def _refusal(code: int, what: str) -> Exception:
    """TransientError for a 4xx answer, FatalError for anything else (5xx)."""
    return (TransientError if 400 <= code < 500 else FatalError)(f"SMTP answered {code}: {what}")


@dataclass
class EmailHandler:
    """Sends email events to the SMTP server at host:port."""

    host: str
    port: int
    sender: str = "notifications@backendlab.test"
    timeout: float = 5.0

    async def send(self, event: Event) -> None:
        message = compose(event, self.sender)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()))
            raise _refusal(code, answer.decode(errors="replace")) from None
        except smtplib.SMTPResponseException as exc:
            raise _refusal(exc.smtp_code, exc.smtp_error.decode(errors="replace")) from None
        except OSError as exc:  # refused, reset, timed out, disconnected (SMTPException is one)
            raise TransientError(f"SMTP server {self.host}:{self.port} unreachable: "
                                 f"{type(exc).__name__}: {exc}") from None
