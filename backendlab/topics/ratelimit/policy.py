"""What a Redis-backed limiter does when Redis does not answer: its stated failure policy.

- open: admit everything (the API stays up, unprotected, while Redis is down);
- closed: refuse everything with 503 (protected, but down with Redis);
- insurance: fall back to an in-memory limiter per instance, as rate-limiter-flexible's
  `insuranceLimiter` does (limited, though each instance counts alone).
"""

from __future__ import annotations

from enum import Enum

import redis

from backendlab.topics.ratelimit.decision import Decision
from backendlab.topics.ratelimit.memory import MemoryLimiter

STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class FailurePolicy(str, Enum):
    OPEN = "open"
    CLOSED = "closed"
    INSURANCE = "insurance"


class StoreUnavailable(RuntimeError):
    """The limiter's store did not answer and the policy is to refuse (fail closed)."""


class ResilientLimiter:
    """Wraps a Redis limiter; on a connection error, decides by `policy` instead of raising."""

    def __init__(self, primary, policy: FailurePolicy | str):
        self.primary = primary
        self.policy = FailurePolicy(policy)
        self.rule = primary.rule
        self.store = primary.store
        self.insurance = MemoryLimiter(primary.rule)
        self.store_errors = 0

    def hit(self, key: str, now: int | None = None) -> Decision:
        try:
            return self.primary.hit(key, now)
        except STORE_ERRORS as exc:
            self.store_errors += 1
            if self.policy is FailurePolicy.OPEN:
                return Decision(True, self.rule.points, self.rule.points, 0)
            if self.policy is FailurePolicy.CLOSED:
                raise StoreUnavailable(
                    f"rate-limit store unavailable ({type(exc).__name__})") from None
            return self.insurance.hit(key, now)
