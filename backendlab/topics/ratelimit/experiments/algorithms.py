"""Experiment 1: the four algorithms replay one request trace, in memory and in Redis (Lua)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from backendlab.topics.ratelimit.experiments.common import admitted_steps, run_prefix
from backendlab.topics.ratelimit import ALGORITHMS, MemoryLimiter, RedisLimiter, Rule
from backendlab.services import redis_client


def boundary_trace(points: int, duration: float) -> list[int]:
    """Request times (ms): 2x `points` requests in the last tenth of the first window, as many in
    the first tenth of the next, then a steady stream at twice the allowed rate for 1.5 windows."""
    window = round(duration * 1000)
    step = window // (20 * points)
    before = [window - window // 10 + i * step for i in range(2 * points)]
    after = [window + i * step for i in range(2 * points)]
    steady = list(range(window + window // 2, 3 * window, window // (2 * points)))
    return before + after + steady


@dataclass
class TraceRun:
    """Which requests of the trace each algorithm admitted, and whether both stores agreed."""

    trace: list[int]
    points: int
    window_ms: int
    admitted: dict[str, list[bool]]
    stores_agree: bool

    def admitted_times(self, algorithm: str) -> list[int]:
        return [t for t, ok in zip(self.trace, self.admitted[algorithm]) if ok]

    def busiest_window(self, algorithm: str) -> int:
        """The most requests admitted within any `window_ms` span: the rate a client really got."""
        times = self.admitted_times(algorithm)
        return max((sum(1 for u in times if t <= u < t + self.window_ms) for t in times), default=0)

    def series(self) -> dict[str, tuple]:
        """{algorithm: (times s, cumulative admitted)}: the figure's steps."""
        out = {}
        for name in self.admitted:
            times = self.admitted_times(name)
            out[name] = ([0.0] + [t / 1000 for t in times], list(range(len(times) + 1)))
        return out

    def summary(self) -> dict:
        return {name: {"admitted": sum(flags), "busiest_window": self.busiest_window(name)}
                for name, flags in self.admitted.items()} | {
            "requests": len(self.trace), "limit": self.points, "stores_agree": self.stores_agree}

    def plot(self):
        """Each algorithm's cumulative admissions over the trace."""
        window = "second" if self.window_ms == 1000 else f"{self.window_ms / 1000:g} s"
        series = self.series()
        if "gcra" in series and self.admitted["gcra"] == self.admitted.get("token_bucket"):
            series["gcra (= token_bucket)"] = series.pop("gcra")
        return admitted_steps(series, dashed=("gcra (= token_bucket)",),
                              title=f"Admitted requests on the same trace (limit {self.points} per "
                                    f"{window}): the fixed window lets 2x through at its edge")


def algorithms(points: int = 10, duration: float = 1.0) -> TraceRun:
    """Replay `boundary_trace` through each algorithm in memory and in Redis on a simulated clock
    (windows start at multiples of the window since the epoch, so the trace starts on an edge)."""
    trace = boundary_trace(points, duration)
    window = Rule("fixed_window", points, duration).window_ms
    base = (time.time_ns() // 1_000_000 // window + 1) * window
    client = redis_client()
    admitted, agree = {}, True
    with run_prefix(client) as prefix:
        for name in ALGORITHMS:
            rule = Rule(name, points, duration)
            memory, shared = MemoryLimiter(rule), RedisLimiter(client, rule, prefix)
            flags = []
            for t in trace:
                decision = memory.hit("client", base + t)
                agree &= decision == shared.hit("client", base + t)
                flags.append(decision.allowed)
            admitted[name] = flags
    client.close()
    return TraceRun(trace, points, window, admitted, agree)
