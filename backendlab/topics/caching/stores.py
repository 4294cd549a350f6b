"""Where cache entries live: Redis (shared by every instance) or this process (cachetools).

Both offer the same small interface the cache-aside layer needs: get and put with a TTL, a tag
set per category (for delete-on-write), a version counter (for versioned keys), and a lock (for
single flight). Any Redis failure surfaces as `CacheDown`, so the caller can fall back.
"""

from __future__ import annotations

import contextlib

import cachetools
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import LockError


class CacheDown(Exception):
    """The cache did not answer; the request is served from the database instead."""


class RedisStore:
    """Entries in Redis. Short timeouts and no retries: a request must not wait on a dead cache."""

    shared = True

    def __init__(self, url: str, timeout: float = 0.5):
        self.client = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout,
                                              socket_connect_timeout=timeout,
                                              retry=Retry(NoBackoff(), 0))

    @contextlib.asynccontextmanager
    async def _guard(self):
        try:
            yield
        except (aioredis.RedisError, OSError) as exc:
            raise CacheDown(f"{type(exc).__name__}: {exc}") from None

    async def get(self, key: str) -> str | None:
        async with self._guard():
            return await self.client.get(key)

    async def put(self, key: str, value: str, ttl_ms: int, tag: str | None = None) -> None:
        """Store `value` for `ttl_ms`; file the key under `tag` (a set that outlives its members)."""
        async with self._guard():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(key, value, px=ttl_ms)
                if tag:
                    pipe.sadd(tag, key).pexpire(tag, ttl_ms * 2)
                await pipe.execute()

    async def drop_tag(self, tag: str) -> int:
        """Delete every key filed under `tag`, and the tag (SMEMBERS, never a KEYS scan)."""
        async with self._guard():
            keys = await self.client.smembers(tag)
            return await self.client.delete(tag, *keys)

    async def version(self, name: str) -> int:
        async with self._guard():
            return int(await self.client.get(name) or 0)

    async def bump(self, name: str, keep_ms: int) -> None:
        """Increment a version counter; it expires `keep_ms` after the last bump, by which time
        every entry written under an older version has expired too."""
        async with self._guard():
            async with self.client.pipeline(transaction=True) as pipe:
                await pipe.incr(name).pexpire(name, keep_ms).execute()

    async def lock(self, name: str, ttl: float):
        """A held redis-py lock on `name` (an owner token, released by a Lua script), or None if
        another caller holds it. It expires after `ttl` s, so a crashed holder blocks no one."""
        lock = self.client.lock(name, timeout=ttl, blocking=False)
        async with self._guard():
            return lock if await lock.acquire() else None

    async def unlock(self, lock) -> None:
        """Release a lock this caller holds; one that already expired is left alone."""
        async with self._guard():
            with contextlib.suppress(LockError):
                await lock.release()

    async def close(self) -> None:
        await self.client.aclose()


class MemoryStore:
    """Entries in this process (a cachetools TTLCache): fastest, but each instance has its own
    copy, so a write through another instance never reaches it."""

    shared = False

    def __init__(self, ttl: float, maxsize: int = 10_000):
        self.entries = cachetools.TTLCache(maxsize=maxsize, ttl=ttl)
        self.tags: dict[str, set[str]] = {}
        self.versions: dict[str, int] = {}

    async def get(self, key: str) -> str | None:
        return self.entries.get(key)

    async def put(self, key: str, value: str, ttl_ms: int, tag: str | None = None) -> None:
        self.entries[key] = value
        if tag:
            self.tags.setdefault(tag, set()).add(key)

    async def drop_tag(self, tag: str) -> int:
        keys = self.tags.pop(tag, set())
        return sum(self.entries.pop(key, None) is not None for key in keys)

    async def version(self, name: str) -> int:
        return self.versions.get(name, 0)

    async def bump(self, name: str, keep_ms: int) -> None:
        self.versions[name] = self.versions.get(name, 0) + 1

    async def lock(self, name: str, ttl: float):
        """No cross-request lock in process: every miss loads (single flight is Redis's lesson)."""
        return name

    async def unlock(self, lock) -> None:
        return None

    async def close(self) -> None:
        return None
