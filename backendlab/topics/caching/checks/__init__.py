"""Lab 05's checks: a cache key builder and a cache-aside helper with TTL, jitter and single flight.

`check(cache_key, get_or_load)` calls the learner's functions in this process: the key builder
over dozens of parameter sets in shuffled orders, the helper against the suite's Redis (keys under
a prefix unique to the run, deleted afterwards), under a burst of threads on a cold key, against a
Redis address where nothing listens, and against a Redis that refuses writes.

Modules: `harness` (the `Lab` and the `Loader` standing in for the database), `full_redis` (a
Redis that refuses writes), `suite` (the checks).
"""

from __future__ import annotations

from backendlab.checks import Report, describe_error, run_lab, trial
from backendlab.topics.caching.checks.harness import Lab, Loader
from backendlab.topics.caching.checks.suite import SUITE

__all__ = ["SUITE", "check", "try_it"]


def check(cache_key, get_or_load, only: str | list[str] | None = None) -> Report:
    """Run lab 05's checks (or the ones named in `only`) on your two functions; deletes every
    Redis key they made."""
    return run_lab("Lab 05: cache_key and get_or_load", SUITE,
                   lambda: Lab(cache_key, get_or_load), only)


def try_it(cache_key, get_or_load) -> None:
    """Print a few keys your cache_key builds, and what get_or_load does on a miss and a hit."""
    for args in (("products", {"page_size": 10, "category": "books", "page": 2}, None),
                 ("products", {"category": "books", "page": 2, "page_size": 10}, None),
                 ("orders", {"page": 1}, "alice")):
        try:
            print(f"cache_key{args!r:60} -> {cache_key(*args)!r}")
        except Exception as exc:
            print(f"FAIL: cache_key{args!r} raised {describe_error(exc, cache_key)}")
    with trial(Lab(cache_key, get_or_load)) as lab:
        loader = Loader({"items": ["a", "b"]})
        for attempt in ("first", "second"):
            value = lab.load(lab.key("try"), loader)
            print(f"{attempt} call -> {value!r}; load() has run {loader.calls} time(s)")
