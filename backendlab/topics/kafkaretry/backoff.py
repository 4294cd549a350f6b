"""How long a failed message waits before its next attempt: exponential backoff, capped, jittered.

Attempt n (1-based: the first retry after the first failure is attempt 1) waits
`min(cap, base * factor ** (n - 1))` without jitter. With full jitter it waits a uniform random
time between 0 and that ceiling, so many messages that failed together do not all come back
together and hammer the downstream that just failed (a thundering herd). Times are integer
milliseconds; pass a seeded `random.Random` to replay the same schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def exponential_ms(attempt: int, base_ms: int, cap_ms: int, factor: float = 2.0) -> int:
    """The capped exponential ceiling for retry `attempt` (1-based)."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if base_ms < 0 or cap_ms < 0 or factor < 1:
        raise ValueError("base and cap must be >= 0 and factor >= 1")
    # Stop multiplying once past the cap, so huge attempt numbers cannot overflow.
    delay = float(base_ms)
    for _ in range(attempt - 1):
        if delay >= cap_ms:
            break
        delay *= factor
    return int(min(cap_ms, delay))


def full_jitter_ms(attempt: int, base_ms: int, cap_ms: int, rng: random.Random,
                   factor: float = 2.0) -> int:
    """A uniform random delay in [0, exponential ceiling] ("full jitter")."""
    return rng.randint(0, exponential_ms(attempt, base_ms, cap_ms, factor))


@dataclass(frozen=True)
class Backoff:
    """A backoff rule: `Backoff(base_ms=200, cap_ms=5000).delay_ms(3, rng)`."""

    base_ms: int = 200
    cap_ms: int = 10_000
    factor: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        exponential_ms(1, self.base_ms, self.cap_ms, self.factor)  # validates the numbers

    def delay_ms(self, attempt: int, rng: random.Random | None = None) -> int:
        if not self.jitter:
            return exponential_ms(attempt, self.base_ms, self.cap_ms, self.factor)
        rng = rng or random.Random()
        return full_jitter_ms(attempt, self.base_ms, self.cap_ms, rng, self.factor)

    def schedule(self, attempts: int, rng: random.Random | None = None) -> list[int]:
        """The delays before retries 1..attempts, e.g. for plotting a retry schedule."""
        rng = rng or random.Random()
        return [self.delay_ms(n, rng) for n in range(1, attempts + 1)]
