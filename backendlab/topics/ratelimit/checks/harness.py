"""What lab 06's checks run the learner's `hit` with: a Redis client, a fresh key per check under a
prefix unique to the run (deleted afterwards), and timelines replayed at exact milliseconds.
"""

from __future__ import annotations

import time
import uuid

import redis

from backendlab.checks import CheckFailed, describe_error
from backendlab.services.redis import delete_keys, redis_url


class Lab:
    """The learner's function, a Redis client, and a fresh key per check."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "hit")
        self.url = redis_url()
        self.client = redis.Redis.from_url(self.url)
        self.prefix = f"backendlab:lab06:{uuid.uuid4().hex[:10]}"

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def call(self, key: str, limit: int, window: int, now: int, client=None) -> tuple[bool, int]:
        try:
            answer = self.fn(client or self.client, key, limit, window, now)
        except NotImplementedError as exc:
            raise CheckFailed(f"{self.name} is not written yet ({exc})") from None
        except Exception as exc:
            raise CheckFailed(f"{self.name} raised {describe_error(exc, self.fn)}") from None
        try:
            allowed, retry = answer
            return bool(allowed), int(retry)
        except (TypeError, ValueError):
            raise CheckFailed(f"{self.name} returned {answer!r}; return (allowed, "
                              "retry_after_ms), e.g. (True, 0) or (False, 250)") from None

    def replay(self, name: str, limit: int, window: int, times: list[int]) -> list[tuple[bool, int]]:
        key = self.key(name)
        base = (time.time_ns() // 1_000_000 // 1000) * 1000
        return [self.call(key, limit, window, base + t) for t in times]

    def close(self) -> None:
        delete_keys(self.client, self.prefix)
        self.client.close()
