"""Experiments of notebook 06: rate limiting, from one algorithm to a fleet of instances.

1. `algorithms`: `boundary_trace`, one request trace, through the four algorithms (memory and
   Redis agree exactly).
2. `across_instances`: locust against several workers, the limiter in memory vs in Redis.
3. `races`: a GET-then-INCR limiter vs the Lua script under a concurrent burst and key churn.
4. `retry_after`, `block_duration`: 429s with their headers; a client that waits vs one that hammers.
5. `client_keys`: limiting by IP behind a proxy, a spoofed X-Forwarded-For, per-plan API keys.
6. `redis_down`: each failure policy when the limiter's Redis stops mid-run.

Each returns a result with `summary()`; those the notebook draws have `plot()`. Every Redis key
goes under a unique per-run prefix, deleted when the experiment ends (`keys_left` counts what
remains); every server and the locust process stop with it.
"""

from backendlab.topics.ratelimit.experiments.algorithms import algorithms, boundary_trace
from backendlab.topics.ratelimit.experiments.common import keys_left
from backendlab.topics.ratelimit.experiments.identities import client_keys
from backendlab.topics.ratelimit.experiments.instances import across_instances
from backendlab.topics.ratelimit.experiments.outage import redis_down
from backendlab.topics.ratelimit.experiments.races import races
from backendlab.topics.ratelimit.experiments.responses import block_duration, retry_after

__all__ = ["across_instances", "algorithms", "block_duration", "boundary_trace", "client_keys",
           "keys_left", "races", "redis_down", "retry_after"]
