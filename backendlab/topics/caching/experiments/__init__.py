"""Experiments of notebook 05: a products API over a slow SQL query, cached in Redis.

Every experiment runs in a `Shop`: tables and cache keys under a prefix unique to the run, seeded
on entry, dropped and deleted on exit (also on error). Servers run as real processes
(`backendlab.topics.caching.server`); clients speak HTTP over loopback. Effects are counted (database
reads, stale answers, wrong answers) rather than timed, wherever a count can show them.

1. `cold_vs_warm`: a miss vs a hit.             2. `ttl_expiry`, `ttl_sweep`: the TTL trade-off.
3. `key_designs`: keys that serve wrong data.    4. `invalidation`: TTL only, delete, version.
5. `stampede`: a burst on an expired key.        6. `two_instances`, `http_caching`: cache layers.
7. `redis_outage`: Redis stops mid-run.          8. `bad_inputs`: hostile requests.
`leftovers`: what the runs left behind (keys, tables, processes), asserted zero at the end.
`services_in_use`: which Redis and SQL the runs use; `read_while_writing`: the read/write
workload the TTL and invalidation experiments share.
Each result a notebook draws has `plot()`; experiments run per variant return a dict (a list for
`ttl_sweep`) of runs that can plot itself (`KeyDesigns`, `InvalidationRuns`, `StampedeRuns`, ...).
"""

from backendlab.topics.caching.experiments.aside import ColdWarm, cold_vs_warm
from backendlab.topics.caching.experiments.badinput import bad_inputs
from backendlab.topics.caching.experiments.invalidation import InvalidationRuns, invalidation
from backendlab.topics.caching.experiments.keys import KeyDesignRun, KeyDesigns, key_designs
from backendlab.topics.caching.experiments.leftovers import leftovers
from backendlab.topics.caching.experiments.layers import (HttpCaching, InstancePairs, TwoInstances,
                                                          http_caching, two_instances)
from backendlab.topics.caching.experiments.outage import Outage, redis_outage
from backendlab.topics.caching.experiments.shop import Shop, services_in_use
from backendlab.topics.caching.experiments.stampede import StampedeRun, StampedeRuns, stampede
from backendlab.topics.caching.experiments.ttl import Expiry, TtlSweep, ttl_expiry, ttl_sweep
from backendlab.topics.caching.experiments.workload import Workload, read_while_writing

__all__ = [
    "ColdWarm", "Expiry", "HttpCaching", "InstancePairs", "InvalidationRuns", "KeyDesignRun",
    "KeyDesigns", "Outage", "Shop", "StampedeRun", "StampedeRuns", "TtlSweep", "TwoInstances",
    "Workload", "bad_inputs", "cold_vs_warm", "http_caching", "invalidation",
    "key_designs", "leftovers", "read_while_writing", "redis_outage", "services_in_use", "stampede",
    "ttl_expiry", "ttl_sweep", "two_instances",
]
