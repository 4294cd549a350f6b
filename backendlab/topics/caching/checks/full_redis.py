"""A Redis at its memory limit with no eviction, for the check that get_or_load answers when Redis
refuses writes: reads work, and every write fails with the OOM error a real full Redis gives.
"""

from __future__ import annotations

import redis

#: Commands a Redis at maxmemory (noeviction) refuses with OOM: every command that can add
#: data, and scripts (which may write). Reads, DEL and EXPIRE still work there.
WRITES = frozenset("""SET SETEX PSETEX SETNX MSET MSETNX GETSET SETRANGE APPEND INCR INCRBY
    INCRBYFLOAT DECR DECRBY HSET HSETNX HMSET HINCRBY HINCRBYFLOAT LPUSH LPUSHX RPUSH RPUSHX
    LINSERT LSET SADD SMOVE ZADD ZINCRBY XADD PFADD GEOADD BITFIELD SETBIT COPY RESTORE
    SUNIONSTORE SINTERSTORE SDIFFSTORE ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZRANGESTORE
    EVAL EVALSHA FCALL""".split())


def _refuse(args) -> None:
    """Raise the OOM error Redis gives at maxmemory if `args` is a write command."""
    if args and str(args[0]).split()[0].upper() in WRITES:
        raise redis.exceptions.OutOfMemoryError(
            "command not allowed when used memory > 'maxmemory'")


class _FullPipeline(redis.client.Pipeline):
    """A pipeline on a full Redis: executing it fails if it queued any write (as MULTI/EXEC
    or a plain pipeline on a real full Redis would); immediate commands after WATCH too."""

    def immediate_execute_command(self, *args, **options):
        _refuse(args)
        return super().immediate_execute_command(*args, **options)

    def execute(self, raise_on_error: bool = True):
        for args, _ in self.command_stack:
            _refuse(args)
        return super().execute(raise_on_error)


class FullRedis(redis.Redis):
    """A Redis at its memory limit with no eviction: reads work, every write (direct, pipelined,
    transactional or in a script) fails with OOM, so a helper must catch it on any write path."""

    def execute_command(self, *args, **options):
        _refuse(args)
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None) -> _FullPipeline:
        return _FullPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
