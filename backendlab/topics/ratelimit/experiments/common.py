"""What the rate-limit experiments share: a Redis key prefix per run, and servers started together."""

from __future__ import annotations

import contextlib
import functools
import uuid

from backendlab.servers import RunningServer, start_server, start_together
from backendlab.services import redis_client
from backendlab.services.redis import delete_keys, keys_under

PREFIX = "backendlab:rl"
_used_prefixes: list[str] = []


@contextlib.contextmanager
def run_prefix(client=None):
    """A unique key prefix for one run; every key under it is deleted at the end, also on error."""
    prefix = f"{PREFIX}:{uuid.uuid4().hex[:10]}"
    _used_prefixes.append(prefix)
    try:
        yield prefix
    finally:
        if client is not None:
            delete_keys(client, prefix)
        else:
            with contextlib.closing(redis_client()) as own:
                delete_keys(own, prefix)


def start_all(stack: contextlib.ExitStack, specs: dict[str, dict]) -> dict[str, RunningServer]:
    """Start one ratelimit (or other, by a "server" entry) server per spec at the same time."""
    return start_together(stack, {
        name: functools.partial(start_server, spec.pop("server", "ratelimit"), **spec)
        for name, spec in ((n, dict(s)) for n, s in specs.items())})


def keys_left() -> int:
    """Keys left under the prefixes this process's runs used (0 after clean runs); other users of
    a shared Redis, a class's for instance, do not count."""
    with contextlib.closing(redis_client()) as client:
        return sum(len(keys_under(client, prefix)) for prefix in _used_prefixes)
