"""What a limiter is configured with (a Rule) and what it answers (a Decision, with HTTP headers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

ALGORITHMS = ("fixed_window", "sliding_log", "sliding_counter", "token_bucket", "gcra")
# Lua numbers are doubles, exact below 2**53: today's time in ms (about 1.8e12) x 4,000 stays there
# until the year 2041.
GCRA_MAX_POINTS = 4000


@dataclass(frozen=True)
class Rule:
    """`points` requests per `duration` seconds; over it, the key is refused for `block` seconds.

    The names follow rate-limiter-flexible (points, duration, blockDuration); block 0 means a
    refused client may try again as soon as the algorithm frees a point.
    """

    algorithm: str
    points: int
    duration: float
    block: float = 0.0

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; use one of "
                             f"{', '.join(ALGORITHMS)}")
        if self.points < 1 or self.duration <= 0 or self.block < 0:
            raise ValueError("points must be at least 1, duration above 0 and block not negative")
        if self.algorithm == "gcra" and self.points > GCRA_MAX_POINTS:
            raise ValueError(f"gcra counts time in ms x points, exact in Redis's Lua numbers up to "
                             f"{GCRA_MAX_POINTS} points; use token_bucket (the same decisions) "
                             f"for {self.points}")

    @property
    def window_ms(self) -> int:
        return max(1, round(self.duration * 1000))

    @property
    def block_ms(self) -> int:
        return round(self.block * 1000)


class Decision(NamedTuple):
    """One answer: allowed or not, points left, ms until the quota is whole again, ms to wait.

    A named tuple: made once per request, so it is cheap to build."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int
    retry_ms: int = 0

    def headers(self) -> dict[str, str]:
        """The rate-limit headers (IETF draft names), and Retry-After in whole seconds if refused."""
        headers = {"RateLimit-Limit": str(self.limit),
                   "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(_seconds(self.reset_ms))}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, _seconds(self.retry_ms)))
        return headers


def _seconds(ms: int) -> int:
    """Whole seconds, rounded up: a client that waits this long is never early."""
    return -(-ms // 1000)
