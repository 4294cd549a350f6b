"""Cache-aside over a store: hits, misses, TTL with jitter, single flight, and the fallback.

When the store fails, the request is answered from the database (`bypass`) and the degradation is
logged once; for the next `retry_after` seconds the store is not tried at all (a tiny circuit
breaker, so requests do not each pay a failed connection), then one request tries it again, and
the recovery is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time

from backendlab.topics.caching.stores import CacheDown

log = logging.getLogger("backendlab.caching")
COUNTS = ("hits", "misses", "bypass", "cache_errors", "waited")


class CacheAside:
    """`get(key, load)` answers (body, how): how is hit, miss, bypass (store down) or off."""

    def __init__(self, store, ttl: float, jitter: float = 0.0, single_flight: bool = False,
                 retry_after: float = 0.5, lock_ttl: float = 2.0):
        self.store, self.ttl, self.jitter = store, ttl, jitter
        self.single_flight, self.retry_after, self.lock_ttl = single_flight, retry_after, lock_ttl
        self.counts = dict.fromkeys(COUNTS, 0)
        self.down_since: float | None = None
        self.retry_at = 0.0

    def ttl_ms(self) -> int:
        """The TTL plus up to `jitter` of it at random, so keys cached together expire apart."""
        return int(self.ttl * 1000 * (1 + random.uniform(0, self.jitter)))

    async def call(self, method, *args):
        """`method(*args)` on the store, or CacheDown (without trying) while it is known down."""
        if self.down_since is not None and time.monotonic() < self.retry_at:
            raise CacheDown("waiting before the next try")
        try:
            result = await method(*args)
        except CacheDown as exc:
            self.counts["cache_errors"] += 1
            self.retry_at = time.monotonic() + self.retry_after
            if self.down_since is None:
                self.down_since = time.monotonic()
                log.warning("cache degraded: %s; serving from the database, retrying every %g s",
                            exc, self.retry_after)
            raise
        if self.down_since is not None:
            log.warning("cache recovered after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None
        return result

    async def try_call(self, method, *args, default=None):
        """`call`, but a store that is down gives `default` (for steps that may be skipped)."""
        try:
            return await self.call(method, *args)
        except CacheDown:
            return default

    async def get(self, key: str, load, tag: str | None = None) -> tuple[str, str]:
        """The JSON body for `key`: cached (hit), or `await load()` stored with a TTL (miss)."""
        if self.store is None:
            return json.dumps(await load()), "off"
        try:
            body = await self.call(self.store.get, key)
        except CacheDown:
            return await self._bypass(load)
        if body is not None:
            self.counts["hits"] += 1
            return body, "hit"
        self.counts["misses"] += 1
        if self.single_flight:
            return await self._load_once(key, load, tag)
        return await self._fill(key, load, tag), "miss"

    async def _fill(self, key: str, load, tag: str | None) -> str:
        body = json.dumps(await load())
        await self.try_call(self.store.put, key, body, self.ttl_ms(), tag)
        return body

    async def _bypass(self, load) -> tuple[str, str]:
        self.counts["bypass"] += 1
        return json.dumps(await load()), "bypass"

    async def _load_once(self, key: str, load, tag: str | None) -> tuple[str, str]:
        """Single flight: the lock holder loads; the others poll the key until it appears, and
        load it themselves only if the holder has not stored it before the lock's TTL."""
        lock = await self.try_call(self.store.lock, key + ":lock", self.lock_ttl, default=False)
        if lock is False:
            return await self._bypass(load)
        if lock is not None:
            try:
                return await self._fill(key, load, tag), "miss"
            finally:
                await self.try_call(self.store.unlock, lock)
        self.counts["waited"] += 1
        deadline = time.monotonic() + self.lock_ttl
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            try:
                body = await self.call(self.store.get, key)
            except CacheDown:
                return await self._bypass(load)
            if body is not None:
                return body, "hit"
        return await self._fill(key, load, tag), "miss"

    async def drop_tag(self, tag: str) -> None:
        if self.store is not None:
            await self.try_call(self.store.drop_tag, tag)

    async def version(self, name: str) -> int:
        if self.store is None:
            return 0
        return await self.try_call(self.store.version, name, default=0)

    async def bump(self, name: str) -> None:
        """Move a version counter on; it outlives every entry written under older versions."""
        if self.store is not None:
            keep_ms = int(self.ttl * 1000 * (1 + self.jitter)) * 4 + 1000
            await self.try_call(self.store.bump, name, keep_ms)

    def state(self) -> dict:
        return {**self.counts, "degraded": self.down_since is not None}
