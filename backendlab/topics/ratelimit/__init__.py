"""Topic 06, rate limiters: five algorithms (GCRA among them) in memory and in Redis (Lua), the racy way, and failure
policies; the API that uses them (`server`), the experiments of notebook 06 (`experiments`), lab
06's checks, the benchmark against the `limits` library (`bench`) and the question bank.

    from backendlab.topics.ratelimit import Rule, memory_limiter, RedisLimiter
    limiter = RedisLimiter(redis_client(), Rule("sliding_log", points=10, duration=60), prefix="rl")
    decision = limiter.hit("user-123")   # Decision(allowed=..., remaining=..., retry_ms=...)

Times are integer milliseconds. Every limiter answers `hit(key, now=None)`; passing `now` replays
a trace on a simulated clock, leaving it out uses the real one (Redis's own clock in Lua, so every
instance agrees). Block markers in Redis always expire on Redis's clock.
"""

from backendlab.topics.ratelimit.decision import ALGORITHMS, Decision, Rule
from backendlab.topics.ratelimit.memory import MemoryLimiter, memory_limiter
from backendlab.topics.ratelimit.naive import GetThenIncrLimiter
from backendlab.topics.ratelimit.policy import FailurePolicy, ResilientLimiter, StoreUnavailable
from backendlab.topics.ratelimit.redis_lua import RedisLimiter

__all__ = [
    "ALGORITHMS", "Decision", "FailurePolicy", "GetThenIncrLimiter", "MemoryLimiter",
    "RedisLimiter", "ResilientLimiter", "Rule", "StoreUnavailable", "memory_limiter",
]
