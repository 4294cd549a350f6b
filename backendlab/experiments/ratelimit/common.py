"""What the rate-limit experiments share: a Redis key prefix per run, and servers started together."""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor

from backendlab.servers import RunningServer, start_server
from backendlab.services import redis_client
from backendlab.services.redis import delete_keys

PREFIX = "backendlab:rl"
_used_prefixes: list[str] = []


@contextlib.contextmanager
def run_prefix(client=None):
    """A unique key prefix for one run; every key under it is deleted at the end, also on error."""
    prefix = f"{PREFIX}:{uuid.uuid4().hex[:10]}"
    _used_prefixes.append(prefix)
    client = client or redis_client()
    try:
        yield prefix
    finally:
        delete_keys(client, prefix)


def start_all(stack: contextlib.ExitStack, specs: dict[str, dict]) -> dict[str, RunningServer]:
    """Start one ratelimit (or other) server per spec at the same time, since each takes about a
    second to import and bind; every one is stopped when `stack` closes, also when another fails."""
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = {name: pool.submit(start_server, spec.pop("server", "ratelimit"), **spec)
                   for name, spec in ((n, dict(s)) for n, s in specs.items())}
    started, failure = {}, None
    for name, future in futures.items():
        try:
            started[name] = stack.enter_context(future.result())
        except Exception as exc:
            failure = failure or exc
    if failure:
        raise failure
    return started


def keys_left() -> int:
    """Keys left under the prefixes this process's runs used (0 after clean runs); other users of
    a shared Redis, a class's for instance, do not count."""
    client = redis_client()
    return sum(1 for prefix in _used_prefixes for _ in client.scan_iter(match=f"{prefix}:*", count=500))
