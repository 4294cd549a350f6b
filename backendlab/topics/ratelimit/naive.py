"""The limiter people write first: read the count, decide in Python, write it back (two round trips).

Between the GET and the write another client can read the same count, so a burst is over-admitted;
and when the key expires between the GET and the INCR, INCR creates it again without a TTL, so the
counter never resets and the client is refused forever.
"""

from __future__ import annotations

import redis

from backendlab.topics.ratelimit.decision import Decision, Rule


class GetThenIncrLimiter:
    """A fixed window with GET, then SET (first hit, with TTL) or INCR: racy on purpose."""

    store = "redis"

    def __init__(self, client: redis.Redis, rule: Rule, prefix: str = "ratelimit"):
        self.client, self.rule, self.prefix = client, rule, prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}:naive:{key}"

    def hit(self, key: str, now: int | None = None) -> Decision:
        name, points = self.key(key), self.rule.points
        count = self.client.get(name)
        if count is None:
            self.client.set(name, 1, px=self.rule.window_ms)
            return Decision(True, points, points - 1, self.rule.window_ms)
        if int(count) < points:
            self.client.incr(name)
            return Decision(True, points, points - int(count) - 1, self.rule.window_ms)
        wait = max(1, self.client.pttl(name))
        return Decision(False, points, 0, wait, wait)
