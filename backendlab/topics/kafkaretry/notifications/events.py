"""A notification event as the router reads it from Kafka, and the checks that make bad ones fatal.

An event is a JSON object `{"id": ..., "type": "email" | "push", "user": ..., ...}`. Anything
else (bytes that are not UTF-8 JSON, a list, a missing id, a user id outside `USER_ID`) will fail
the same way on every attempt, so `parse_event` raises `FatalError`: the retry manager sends it to
the dead-letter topic at once instead of retrying it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from backendlab.topics.kafkaretry import FatalError

USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
USER_ID_RULE = "1-64 letters, digits, '_' or '-'"


@dataclass(frozen=True)
class Event:
    """One parsed event; `payload` is the whole JSON object (what a push sends to the user)."""

    id: str
    type: str
    user: str
    payload: dict


def valid_user(user: object) -> bool:
    return isinstance(user, str) and USER_ID.fullmatch(user) is not None


def parse_event(raw: bytes | None) -> Event:
    """The event in a record's value; raises FatalError saying what is wrong with it."""
    if raw is None:
        raise FatalError("bad payload: the record has no value")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FatalError(f"bad payload: not UTF-8 JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise FatalError(f"bad payload: expected a JSON object, got {type(payload).__name__}")
    event_id, kind, user = payload.get("id"), payload.get("type"), payload.get("user")
    if not isinstance(event_id, (str, int)) or isinstance(event_id, bool) or event_id == "":
        raise FatalError("bad payload: 'id' must be a non-empty string or an integer")
    if not isinstance(kind, str):
        raise FatalError("bad payload: 'type' must be a string such as 'email' or 'push'")
    if not valid_user(user):
        raise FatalError(f"bad payload: 'user' must be {USER_ID_RULE}")
    return Event(str(event_id), kind, user, payload)
