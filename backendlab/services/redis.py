"""Redis: REDIS_URL names a real server; otherwise a redis-server on PATH, else fakeredis over TCP.

BACKENDLAB_REDIS_ENGINE=fakeredis picks fakeredis even when redis-server is installed (the
fakeredis server supports Lua through lupa, but not INFO or CONFIG).
"""

from __future__ import annotations

import shutil
import sys

import redis

from backendlab import config, processes
from backendlab.services.base import Service


class RedisService(Service):
    name = "Redis"
    env_var = "REDIS_URL"
    compose_service = "redis"

    def engine(self) -> str:
        """Which embedded engine would start: 'redis-server' or 'fakeredis'."""
        wanted = config.get("BACKENDLAB_REDIS_ENGINE", "")
        if wanted == "fakeredis" or not shutil.which("redis-server"):
            return "fakeredis"
        return "redis-server"

    def probe(self, address: str) -> str:
        client = redis.Redis.from_url(address, socket_connect_timeout=2, socket_timeout=3)
        try:
            client.ping()
            try:
                return "redis " + str(client.info("server")["redis_version"])
            except redis.ResponseError:
                import fakeredis
                return f"fakeredis {fakeredis.__version__}"
        finally:
            client.close()

    def start_embedded(self) -> str:
        port = processes.free_port()
        if self.engine() == "redis-server":
            argv = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        else:
            argv = [sys.executable, "-m", "backendlab.services.fakeredis_server", "--port", str(port)]
        self._embedded = processes.start("redis", argv, port=port).wait_for_port()
        return f"redis://127.0.0.1:{port}/0"

    def describe(self) -> str:
        return "" if self._mode == "real" else f"embedded {self.engine()}"


service = RedisService()


def redis_url() -> str:
    """The Redis URL to use (starts the embedded server on first use)."""
    return service.address()


def redis_client(**kwargs) -> redis.Redis:
    """A redis-py client for the suite's Redis, decoding responses to str by default."""
    kwargs.setdefault("decode_responses", True)
    return redis.Redis.from_url(redis_url(), **kwargs)


def keys_under(client: redis.Redis, prefix: str) -> list:
    """Every key under `prefix:`, found with SCAN (KEYS would block a shared Redis)."""
    return list(client.scan_iter(match=f"{prefix}:*", count=500))


def delete_keys(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix:` with SCAN and DEL (never FLUSH: Redis may be shared)."""
    names = keys_under(client, prefix)
    for start in range(0, len(names), 500):
        client.delete(*names[start:start + 500])
    return len(names)
