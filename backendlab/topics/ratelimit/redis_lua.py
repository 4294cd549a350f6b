"""The five algorithms as Lua scripts: each decision is one atomic round trip to Redis.

Redis runs a script alone, so the read, the decision and the write cannot interleave with another
instance's (GET-then-SET from Python can: see `naive`). Every key a script writes gets a TTL in
the same call. The clock is Redis's own (`TIME`) unless the caller passes `now_ms` to replay a
trace, so instances with skewed clocks still agree on the windows. The arithmetic matches
`memory` exactly, which the tests check by replaying the same traces through both.
"""

from __future__ import annotations

import redis

from backendlab.topics.ratelimit.decision import Decision, Rule

# KEYS[1]: the key's state; the script derives the others from it (window keys, the block marker),
# so it needs one Redis, or a Cluster slot shared through a hash tag in the key.
# ARGV: points, window ms, block ms, now ms ("" = Redis's clock).
PREAMBLE = """
local points, window, block = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if block > 0 then
  local blocked = redis.call('PTTL', KEYS[1] .. ':blocked')
  if blocked > 0 then return {0, 0, blocked, blocked} end
end
local allowed, remaining, reset, retry = 0, 0, 0, 0
"""

EPILOGUE = """
if allowed == 0 and block > 0 then
  redis.call('SET', KEYS[1] .. ':blocked', 1, 'PX', block)
  retry = math.max(retry, block)
  reset = retry
end
return {allowed, remaining, reset, retry}
"""

FIXED_WINDOW = """
local start = now - now % window
local key = KEYS[1] .. ':' .. start
local count = tonumber(redis.call('GET', key) or '0')
reset = start + window - now
if count >= points then
  retry = reset
else
  count = redis.call('INCR', key)
  redis.call('PEXPIRE', key, reset)
  allowed, remaining = 1, points - count
end
"""

SLIDING_LOG = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= points then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  retry = tonumber(oldest[2]) + window - now
  reset = tonumber(newest[2]) + window - now
else
  -- members must be unique: two hits in one millisecond differ by the count before them
  redis.call('ZADD', KEYS[1], now, now .. ':' .. count)
  redis.call('PEXPIRE', KEYS[1], window)
  allowed, remaining, reset = 1, points - count - 1, window
end
"""

SLIDING_COUNTER = """
local start = now - now % window
local elapsed = now - start
local current = KEYS[1] .. ':' .. start
local count = tonumber(redis.call('GET', current) or '0')
local previous = tonumber(redis.call('GET', KEYS[1] .. ':' .. (start - window)) or '0')
if previous * (window - elapsed) + (count + 1) * window <= points * window then
  count = redis.call('INCR', current)
  redis.call('PEXPIRE', current, 2 * window - elapsed)
  local used = math.ceil(previous * (window - elapsed) / window) + count
  allowed, remaining, reset = 1, math.max(0, points - used), 2 * window - elapsed
else
  reset = window - elapsed
  if count > 0 then reset = reset + window end
  if count < points then
    retry = window - math.floor((points - count - 1) * window / previous) - elapsed
  else
    retry = window - elapsed + math.max(0, window - math.floor((points - 1) * window / count))
  end
end
"""

TOKEN_BUCKET = """
local full = points * window
local state = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(state[1]) or full
local ts = tonumber(state[2]) or now
level = math.min(full, level + math.max(0, now - ts) * points)
if level < window then
  retry = math.ceil((window - level) / points)
else
  level = level - window
  allowed, remaining = 1, math.floor(level / window)
end
reset = math.ceil((full - level) / points)
redis.call('HSET', KEYS[1], 'level', level, 'ts', now)
redis.call('PEXPIRE', KEYS[1], reset)
"""

# One string, the theoretical arrival time in ms x points; written with %.0f, since Redis would
# turn a Lua number this large into a string in exponent form and lose its last digits.
GCRA = """
local scaled = now * points
local empty_at = math.max(tonumber(redis.call('GET', KEYS[1]) or scaled), scaled)
local early = empty_at + window - scaled - points * window
if early > 0 then
  retry = math.ceil(early / points)
  reset = math.ceil((empty_at - scaled) / points)
else
  empty_at = empty_at + window
  allowed = 1
  remaining = math.floor((points * window - (empty_at - scaled)) / window)
  reset = math.ceil((empty_at - scaled) / points)
  redis.call('SET', KEYS[1], string.format('%.0f', empty_at), 'PX', reset)
end
"""

SCRIPTS = {name: PREAMBLE + body + EPILOGUE for name, body in (
    ("fixed_window", FIXED_WINDOW), ("sliding_log", SLIDING_LOG),
    ("sliding_counter", SLIDING_COUNTER), ("token_bucket", TOKEN_BUCKET), ("gcra", GCRA))}


class RedisLimiter:
    """A rule applied per key in Redis, shared by every process that uses the same prefix."""

    store = "redis"

    def __init__(self, client: redis.Redis, rule: Rule, prefix: str = "ratelimit"):
        self.client, self.rule, self.prefix = client, rule, prefix
        self._script = client.register_script(SCRIPTS[rule.algorithm])
        self._base = f"{prefix}:{rule.algorithm}:"
        self._rule_args = [rule.points, rule.window_ms, rule.block_ms]

    def key(self, key: str) -> str:
        """The Redis key holding `key`'s state (its block marker adds ':blocked')."""
        return self._base + key

    def hit(self, key: str, now: int | None = None) -> Decision:
        """One EVALSHA: decide, count and set TTLs atomically."""
        allowed, remaining, reset, retry = self._script(
            keys=[self._base + key], args=[*self._rule_args, "" if now is None else now])
        return Decision(allowed == 1, self.rule.points, remaining, reset, retry)
