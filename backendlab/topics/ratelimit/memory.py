"""The five algorithms in one process's memory: exact and fast, but each process counts alone.

Each algorithm is a function `(state, now, rule) -> (allowed, remaining, reset_ms, retry_ms, ttl_ms)`
over a small mutable state for one key; `redis_lua` runs the same arithmetic inside Redis. State
whose TTL has passed is dropped, so memory stays bounded by the keys seen within one window.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from backendlab.topics.ratelimit.decision import Decision, Rule


def now_ms() -> int:
    """This machine's wall clock in integer milliseconds."""
    return time.time_ns() // 1_000_000


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fixed_window(state: dict, now: int, rule: Rule):
    """One counter per calendar window: cheap, but allows 2x the limit across a window edge."""
    window = rule.window_ms
    start = now - now % window
    if state.get("start") != start:
        state.update(start=start, count=0)
    reset = start + window - now
    if state["count"] >= rule.points:
        return False, 0, reset, reset, reset
    state["count"] += 1
    return True, rule.points - state["count"], reset, 0, reset


def sliding_log(state: dict, now: int, rule: Rule):
    """A timestamp per admitted request in the last window: exact, memory O(limit) per key."""
    window, log = rule.window_ms, state.setdefault("log", deque())
    while log and log[0] <= now - window:
        log.popleft()
    if len(log) >= rule.points:
        retry = log[0] + window - now
        return False, 0, log[-1] + window - now, retry, log[-1] + window - now
    log.append(now)
    return True, rule.points - len(log), window, 0, window


def sliding_counter(state: dict, now: int, rule: Rule):
    """Two window counters, the previous one weighted by its overlap: O(1) memory, near exact."""
    window, limit = rule.window_ms, rule.points
    start = now - now % window
    if state.get("start") != start:
        previous = state.get("count", 0) if state.get("start") == start - window else 0
        state.update(start=start, previous=previous, count=0)
    elapsed, previous, count = now - start, state["previous"], state["count"]
    # allowed when previous * (window - elapsed) / window + count + 1 <= limit, in integers
    if previous * (window - elapsed) + (count + 1) * window <= limit * window:
        state["count"] += 1
        used = _ceil_div(previous * (window - elapsed), window) + state["count"]
        return True, max(0, limit - used), 2 * window - elapsed, 0, 2 * window - elapsed
    reset = (window - elapsed) + (window if count else 0)
    return False, 0, reset, _counter_retry(previous, count, elapsed, rule), 2 * window - elapsed


def _counter_retry(previous: int, count: int, elapsed: int, rule: Rule) -> int:
    """ms until the weighted count leaves room for one more request."""
    window, limit = rule.window_ms, rule.points
    if count < limit:
        # the smallest elapsed e with previous * (window - e) <= (limit - count - 1) * window
        return window - (limit - count - 1) * window // previous - elapsed
    # wait for the next window, where this window's count becomes the weighted previous one
    return (window - elapsed) + max(0, window - (limit - 1) * window // count)


def token_bucket(state: dict, now: int, rule: Rule):
    """A bucket of `points` tokens refilled at points/duration: allows bursts, then a steady rate.

    The level is kept in tokens x window (an integer), so refilling `points` per ms is exact.
    """
    window, limit = rule.window_ms, rule.points
    full = limit * window
    level = min(full, state.get("level", full) + max(0, now - state.get("ts", now)) * limit)
    state.update(level=level, ts=now)
    if level < window:
        retry = _ceil_div(window - level, limit)
        return False, 0, _ceil_div(full - level, limit), retry, _ceil_div(full - level, limit)
    state["level"] = level - window
    refill = _ceil_div(full - state["level"], limit)
    return True, state["level"] // window, refill, 0, refill


def gcra(state: dict, now: int, rule: Rule):
    """The generic cell rate algorithm (a leaky bucket used as a meter): one number per key, the
    time at which the key's bucket would be empty ("theoretical arrival time"). It makes exactly
    the token bucket's decisions with half its state and no refill step.

    Times are kept in ms x points, so one request's share of the window (window / points ms) is
    the integer `window` and nothing is rounded.
    """
    window, limit = rule.window_ms, rule.points
    scaled = now * limit
    empty_at = max(state.get("tat", scaled), scaled)
    early = empty_at + window - scaled - limit * window
    if early > 0:
        reset = _ceil_div(empty_at - scaled, limit)
        return False, 0, reset, _ceil_div(early, limit), reset
    state["tat"] = empty_at + window
    backlog = state["tat"] - scaled
    reset = _ceil_div(backlog, limit)
    return True, (limit * window - backlog) // window, reset, 0, reset


ALGORITHM_FUNCTIONS = {f.__name__: f for f in (fixed_window, sliding_log, sliding_counter,
                                                token_bucket, gcra)}


class MemoryLimiter:
    """A rule applied per key in this process; thread-safe; refused keys blocked for `rule.block`."""

    store = "memory"

    def __init__(self, rule: Rule):
        self.rule = rule
        self._step = ALGORITHM_FUNCTIONS[rule.algorithm]
        self._states: dict[str, tuple[dict, int]] = {}
        self._blocked: dict[str, int] = {}
        self._lock = threading.Lock()
        self._hits = 0

    def hit(self, key: str, now: int | None = None) -> Decision:
        now = now_ms() if now is None else now
        with self._lock:
            self._hits += 1
            if self._hits % 1000 == 0:
                self._sweep(now)
            until = self._blocked.get(key, 0)
            if until > now:
                return Decision(False, self.rule.points, 0, until - now, until - now)
            state, expires = self._states.get(key, ({}, 0))
            if expires <= now:
                state = {}
            allowed, remaining, reset, retry, ttl = self._step(state, now, self.rule)
            self._states[key] = (state, now + ttl)
            if not allowed and self.rule.block_ms:
                self._blocked[key] = now + self.rule.block_ms
                retry = reset = max(retry, self.rule.block_ms)
            return Decision(allowed, self.rule.points, remaining, reset, retry)

    def keys(self) -> int:
        """How many keys hold state (expired ones included until the next sweep)."""
        return len(self._states)

    def _sweep(self, now: int) -> None:
        self._states = {k: v for k, v in self._states.items() if v[1] > now}
        self._blocked = {k: v for k, v in self._blocked.items() if v > now}


def memory_limiter(algorithm: str, points: int, duration: float, block: float = 0) -> MemoryLimiter:
    """A MemoryLimiter for `points` per `duration` s by `algorithm` (a shortcut for notebooks)."""
    return MemoryLimiter(Rule(algorithm, points, duration, block))
