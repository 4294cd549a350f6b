"""Rate limiters: four algorithms in memory and in Redis (Lua), the racy way, and failure policies.

    from backendlab.ratelimit import Rule, memory_limiter, RedisLimiter
    limiter = RedisLimiter(redis_client(), Rule("sliding_log", points=10, duration=60), prefix="rl")
    decision = limiter.hit("user-123")   # Decision(allowed=..., remaining=..., retry_ms=...)

Times are integer milliseconds. Every limiter answers `hit(key, now=None)`; passing `now` replays
a trace on a simulated clock, leaving it out uses the real one (Redis's own clock in Lua, so every
instance agrees). Block markers in Redis always expire on Redis's clock.
"""

from backendlab.ratelimit.decision import ALGORITHMS, Decision, Rule
from backendlab.ratelimit.memory import MemoryLimiter, memory_limiter
from backendlab.ratelimit.naive import GetThenIncrLimiter
from backendlab.ratelimit.policy import FailurePolicy, ResilientLimiter, StoreUnavailable
from backendlab.ratelimit.redis_lua import RedisLimiter

__all__ = [
    "ALGORITHMS", "Decision", "FailurePolicy", "GetThenIncrLimiter", "MemoryLimiter",
    "RedisLimiter", "ResilientLimiter", "Rule", "StoreUnavailable", "memory_limiter",
]
