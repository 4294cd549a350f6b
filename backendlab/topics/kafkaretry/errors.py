"""Transient or fatal: decides whether a failed message is worth another attempt.

A transient error (a timeout, a refused connection, a 503 from the email provider) may pass on the
next try, so the message goes to a retry topic. A fatal error (a payload that does not parse, a
missing field) fails the same way every time; retrying only delays it, so it goes straight to the
dead-letter topic. Handlers can say so explicitly by raising `TransientError` or `FatalError`;
otherwise the exception's type decides, and anything unknown counts as transient (it is retried a
bounded number of times, then dead-lettered, so nothing is lost by guessing wrong).
"""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    TRANSIENT = "transient"
    FATAL = "fatal"


class TransientError(Exception):
    """Raise from a handler for a failure that may pass on retry (downstream down, timeout)."""


class FatalError(Exception):
    """Raise from a handler for a failure that will never pass (bad payload, unknown event type)."""


# Bad input: the same bytes will fail the same way on every attempt.
FATAL_TYPES: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, LookupError,
                                                 AttributeError, UnicodeError)
# The outside world: connections, timeouts, OS-level failures.
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError, OSError)


def classify(exc: BaseException, *, fatal: tuple = FATAL_TYPES, transient: tuple = TRANSIENT_TYPES,
             default: Kind = Kind.TRANSIENT) -> Kind:
    """The kind of `exc`: explicit markers first, then the type lists, then `default`."""
    if isinstance(exc, FatalError):
        return Kind.FATAL
    if isinstance(exc, TransientError):
        return Kind.TRANSIENT
    if isinstance(exc, transient):
        return Kind.TRANSIENT
    if isinstance(exc, fatal):
        return Kind.FATAL
    return Kind(default)


def describe(exc: BaseException, limit: int = 500) -> str:
    """`TypeName: message`, cut to `limit` characters, for a header."""
    return clip(f"{type(exc).__name__}: {exc}".strip(), limit)


def clip(text: str, limit: int = 500) -> str:
    """`text`, cut to `limit` characters with an ellipsis, so a header stays small."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
