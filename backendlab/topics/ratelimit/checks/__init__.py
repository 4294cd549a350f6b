"""Lab 06's checks: a sliding-window-log limiter written as one Lua script with a Python wrapper.

The learner's `hit(client, key, limit, window_ms, now_ms)` returns `(allowed, retry_after_ms)`.
A hit at time t counts against the key for times t <= now < t + window_ms. The checks replay
exact timelines (edges, Retry-After), count round trips, inspect TTLs and sizes of the keys it
writes, and run a burst from several processes at once. Keys live under a unique prefix in the
suite's Redis and are deleted afterwards.

Modules: `harness` (the `Lab`: Redis, keys, replayed timelines), `burst` (the check from several
processes), `suite` (the checks).
"""

from __future__ import annotations

from backendlab.checks import Report, run_lab, trial
from backendlab.topics.ratelimit.checks.harness import Lab
from backendlab.topics.ratelimit.checks.suite import SUITE

__all__ = ["SUITE", "check", "try_it"]


def check(fn, only: str | list[str] | None = None) -> Report:
    """Run lab 06's checks (or the ones named in `only`) on `fn`, your hit; deletes every key
    they wrote."""
    return run_lab(f"Lab 06: {getattr(fn, '__name__', 'hit')}", SUITE, lambda: Lab(fn), only)


def try_it(fn) -> None:
    """Replay a short timeline (limit 2 per 1000 ms) through `fn` and print each answer."""
    with trial(Lab(fn)) as lab:
        steps = [0, 300, 600, 1000, 1200]
        print("limit 2 per 1000 ms")
        for t, (ok, retry) in zip(steps, lab.replay("try", 2, 1000, steps)):
            print(f"  t={t:5d} ms  allowed={ok!s:5}  retry_after_ms={retry}")
        print("expected: True, True, False (retry 400), True, False (retry 100)")
