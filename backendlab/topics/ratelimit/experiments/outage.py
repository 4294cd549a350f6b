"""Experiment 6: the limiter's Redis stops mid-run; each failure policy (open, closed, an
in-memory insurance limiter) answers as it promised."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass

import httpx

from backendlab import progressbar
from backendlab.topics.ratelimit.experiments.common import PREFIX, admitted_steps, start_all
from backendlab.topics.ratelimit import FailurePolicy
from backendlab.services.redis import RedisService

POLICIES = tuple(policy.value for policy in FailurePolicy)


@dataclass
class OutageRun:
    """(seconds from start, status) per policy; Redis stopped at `stopped_at` seconds."""

    points: int
    duration: float
    stopped_at: float
    results: dict[str, list[tuple[float, int]]]

    def counts(self, policy: str, after: bool) -> dict[int, int]:
        """{status: count} for the requests before (or after) Redis stopped."""
        phase = [s for t, s in self.results[policy] if (t >= self.stopped_at) == after]
        return {status: phase.count(status) for status in sorted(set(phase))}

    def series(self) -> dict[str, tuple]:
        """{policy: (times s, cumulative admitted)}: the figure's steps."""
        out = {}
        for policy, rows in self.results.items():
            totals, admitted = [], 0
            for _, status in rows:
                admitted += status == 200
                totals.append(admitted)
            out[policy] = ([t for t, _ in rows], totals)
        return out

    def summary(self) -> dict:
        return {policy: {"before": self.counts(policy, False), "after": self.counts(policy, True)}
                for policy in self.results}

    def plot(self):
        """Each policy's cumulative admissions, the moment Redis stopped marked."""
        return admitted_steps(self.series(), marker=(self.stopped_at, "Redis stopped"),
                               title="After Redis stops: " + ", ".join(
                                   f"{policy} admits {after.get(200, 0)} of {sum(after.values())}"
                                   for policy, after in ((p, self.counts(p, True)) for p in self.results)))


def redis_down(points: int = 5, duration: float = 1.0, seconds: float = 1.0,
               interval: float = 0.05, *, progress: bool = True) -> OutageRun:
    """One server per policy, all on a Redis of their own (the suite's may be shared, so it is
    never the one stopped); one client per server sends a request every `interval` s as one user
    (limit `points` per `duration` s); the Redis is stopped after `seconds` s, and the clients go
    on for `seconds` more."""
    redis = RedisService()
    url = redis.start_embedded()
    try:
        with contextlib.ExitStack() as stack:
            prefix = f"{PREFIX}:{uuid.uuid4().hex[:10]}"
            servers = start_all(stack, {policy: dict(store="redis", redis_url=url,
                                                     on_redis_error=policy, key="user",
                                                     points=points, duration=duration,
                                                     prefix=f"{prefix}:{policy}")
                                        for policy in POLICIES})
            clients = {policy: stack.enter_context(httpx.Client(
                base_url=server.url, timeout=5, headers={"X-User-Id": "steady"}))
                for policy, server in servers.items()}
            bar = stack.enter_context(progressbar.progress(round(2 * seconds / interval),
                                                   "requests per server", progress))
            results = {policy: [] for policy in servers}
            stopped_at, tick, t0 = None, 0, time.perf_counter()
            while time.perf_counter() - t0 < 2 * seconds:
                if stopped_at is None and time.perf_counter() - t0 >= seconds:
                    redis.stop()
                    stopped_at = time.perf_counter() - t0
                for policy, client in clients.items():
                    results[policy].append((time.perf_counter() - t0,
                                            client.get("/api/data").status_code))
                tick += 1
                bar.update()
                time.sleep(max(0.0, t0 + tick * interval - time.perf_counter()))
    finally:
        redis.stop()
    return OutageRun(points, duration, stopped_at, results)

