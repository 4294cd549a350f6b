"""What lab 05's checks run the learner's functions with: the `Lab` (their two functions, a Redis
client, keys under a prefix unique to the run) and a `Loader` standing in for the database.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import redis

from backendlab.checks import CheckFailed, describe_error
from backendlab.services import redis_client

TTL, JITTER = 10.0, 0.2


class Lab:
    """The learner's two functions and the Redis keys the checks make (all under `prefix`)."""

    def __init__(self, cache_key, get_or_load):
        self.cache_key, self.get_or_load = cache_key, get_or_load
        self.run = uuid.uuid4().hex[:12]
        self.prefix = f"backendlab:lab05:{self.run}"
        self.client = redis_client()

    def key(self, name: str) -> str:
        """A Redis key of this run's, for the helper to cache under."""
        return f"{self.prefix}:{name}"

    def build_key(self, resource: str, params: dict, user=None) -> str:
        """The learner's cache_key for these arguments; a CheckFailed when it raises or returns
        something other than a non-empty str."""
        try:
            key = self.cache_key(resource, params, user)
        except Exception as exc:
            raise CheckFailed(f"cache_key({resource!r}, {params!r}, {user!r}) raised "
                              f"{describe_error(exc, self.cache_key)}") from None
        if not isinstance(key, str) or not key:
            raise CheckFailed(f"cache_key returned {key!r}: return a non-empty str")
        return key

    def load(self, key: str, loader, client=None, ttl: float = TTL, jitter: float = JITTER):
        """The learner's get_or_load on `key`; a CheckFailed naming the line when it raises."""
        try:
            return self.get_or_load(client or self.client, key, loader, ttl, jitter)
        except CheckFailed:
            raise
        except Exception as exc:
            raise CheckFailed(f"get_or_load raised {describe_error(exc, self.get_or_load)}") from None

    def made_keys(self) -> list[str]:
        """Every key in Redis that contains this run's id (data keys and any lock keys)."""
        return list(self.client.scan_iter(match=f"*{self.run}*", count=500))

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):
            keys = self.made_keys()
            if keys:
                self.client.delete(*keys)
        self.client.close()


class Loader:
    """A stand-in for the database query: counts its calls, optionally takes a while, and runs
    `during()` while it works (to look at Redis mid-load)."""

    def __init__(self, value, seconds: float = 0.0, during=None):
        self.value, self.seconds, self.during, self.calls = value, seconds, during, 0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        if self.during is not None:
            self.during()
        time.sleep(self.seconds)
        return self.value
