"""What the rate-limit experiments share: a Redis key prefix per run, servers started together,
and the figure of requests admitted over time."""

from __future__ import annotations

import contextlib
import functools
import uuid

from backendlab import plots
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


def admitted_steps(series: dict[str, tuple], title: str, limit: float | None = None,
                    marker: tuple[float, str] | None = None, xlabel: str = "time (s)",
                    dashed: tuple[str, ...] = ()):
    """Cumulative admitted requests per label of (times, totals), as steps; optionally a dashed
    line at `limit`, a vertical `marker` (time, label) for an event, and the labels in `dashed`
    drawn dashed, on top, so a line that follows another exactly leaves it visible."""
    fig, (ax,) = plots.figure()
    for label, (times, totals) in series.items():
        style = {"linestyle": (0, (4, 3)), "linewidth": 2.4, "zorder": 3} if label in dashed else \
            {"linewidth": 1.8}
        ax.step(times, totals, where="post", label=label, **style)
    if limit is not None:
        ax.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"limit ({limit:g})")
    if marker is not None:
        ax.axvline(marker[0], color="grey", linestyle=":", linewidth=1.5, label=marker[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("requests admitted (cumulative)")
    ax.legend()
    return plots.finish(fig, title)
