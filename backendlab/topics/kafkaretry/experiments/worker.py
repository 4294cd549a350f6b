"""A consumer process that commits after each batch and runs a side effect per message ("sends an
email": appends the id to a Redis list; or publishes a copy to the retry topic): the subject of the
at-least-once experiment, which SIGKILLs it.

    python -m backendlab.topics.kafkaretry.experiments.worker --bootstrap 127.0.0.1:9092 --topic orders \\
        --group mailer --redis redis://127.0.0.1:6379/0 --prefix backendlab:07:ab12 \\
        --mode idempotent --batch 10 [--kill-after 25]

It reads its group's partitions from the committed offset to the end offsets it found on joining,
then exits. With `--kill-after N` it stops just after the side effect of the record at offset N,
before its batch is committed: it prints `KILL_POINT` and waits to be killed.

Every line it prints is an event the parent parses: `delivered <id> <offset>`, `effect <id>`,
`skipped <id>`, `committed <offset>`, `KILL_POINT <offset>`, `done`.

Side effects, per `--mode`:

- naive: RPUSH the id on every delivery, so a redelivered message is "sent" twice.
- retry-topic: publish a copy to `--retry-topic` (what the retry router does with a failed record
  before it commits): a redelivered message is copied twice.
- idempotent: mark and effect in one Lua script: SET `<prefix>:done:<id>` NX, and RPUSH only when
  the mark is new. Redis runs a script as a whole, so a kill can come before it or after it, never
  between. As two separate calls, either order breaks: mark-then-effect is at-most-once (killed
  between them, the redelivery finds the mark and skips: the email is never sent); effect-then-mark
  is at-least-once (killed between them, the redelivery sees no mark and sends it again). The
  one-script trick needs the effect and the mark in the same store; a real email provider needs
  an idempotency key of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from backendlab.topics.kafkaretry.consumer import GROUP_TIMINGS

MODES = ("naive", "idempotent", "retry-topic")
KILL_POINT = "KILL_POINT"
DEDUPE_TTL_MS = 24 * 3600 * 1000  # how long a redelivery can come late and still be caught

SEND_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
    redis.call('RPUSH', KEYS[2], ARGV[1])
    return 1
end
return 0
"""


def sent_key(prefix: str) -> str:
    """The list of ids whose email was sent, one entry per send."""
    return f"{prefix}:sent"


def done_key(prefix: str, message_id: str) -> str:
    """The dedupe mark of one message."""
    return f"{prefix}:done:{message_id}"


def send(client, prefix: str, message_id: str) -> bool:
    """The naive side effect: send on every delivery."""
    client.rpush(sent_key(prefix), message_id)
    return True


def send_once(client, prefix: str, message_id: str, ttl_ms: int = DEDUPE_TTL_MS) -> bool:
    """The idempotent side effect: send only if this id was never marked done; True if it sent."""
    script = client.register_script(SEND_ONCE)
    return script(keys=[done_key(prefix, message_id), sent_key(prefix)],
                  args=[message_id, ttl_ms]) == 1


async def publish(producer, topic: str, record) -> bool:
    """The retry-topic side effect: publish a copy and wait for the broker's acknowledgement, as
    the retry router does before it commits a failed record."""
    await producer.send_and_wait(topic, record.value, key=record.key)
    return True


EMAIL_SENDERS = {"naive": send, "idempotent": send_once}


def say(*words) -> None:
    print(*words, flush=True)


@dataclass
class WorkerLog:
    """What one worker run printed, parsed."""

    delivered: list[str] = field(default_factory=list)  # ids, in delivery order
    effects: list[str] = field(default_factory=list)  # ids whose side effect ran
    skipped: list[str] = field(default_factory=list)  # ids the dedupe mark stopped
    committed: list[int] = field(default_factory=list)  # offsets committed, in order
    kill_point: int | None = None
    done: bool = False


def read_log(output: str) -> WorkerLog:
    """Parse a worker's output (lines it did not print as events are ignored)."""
    log = WorkerLog()
    for line in output.splitlines():
        match line.split():
            case ["delivered", message_id, _offset]:
                log.delivered.append(message_id)
            case ["effect", message_id]:
                log.effects.append(message_id)
            case ["skipped", message_id]:
                log.skipped.append(message_id)
            case ["committed", offset]:
                log.committed.append(int(offset))
            case [marker, offset] if marker == KILL_POINT:
                log.kill_point = int(offset)
            case ["done"]:
                log.done = True
    return log


async def consume(args, effect: Callable[[object], Awaitable[bool]]) -> None:
    """Read the group's partitions to their end offsets, `effect(record)` per record, committing
    after every `args.batch` records (and at the end)."""
    consumer = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **GROUP_TIMINGS)
    await consumer.start()
    deadline = time.monotonic() + args.timeout
    try:
        ends, pending, uncommitted = None, {}, 0
        while ends is None or not await caught_up(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"did not reach the end of {args.topic} in {args.timeout} s")
            batch = await consumer.getmany(timeout_ms=100)
            if ends is None and consumer.assignment():
                ends = await consumer.end_offsets(list(consumer.assignment()))
            for tp, records in batch.items():
                for record in records:
                    message_id = record.key.decode()
                    say("delivered", message_id, record.offset)
                    say("effect" if await effect(record) else "skipped", message_id)
                    if record.offset == args.kill_after:
                        say(KILL_POINT, record.offset)
                        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                        raise TimeoutError("was not killed at the kill point")
                    pending[tp] = record.offset + 1
                    uncommitted += 1
                    if uncommitted == args.batch:
                        await commit(consumer, pending)
                        uncommitted = 0
        await commit(consumer, pending)
        say("done")
    finally:
        await consumer.stop()


async def caught_up(consumer, ends: dict) -> bool:
    """Whether every assigned partition has been read up to its end offset."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def commit(consumer, pending: dict) -> None:
    if pending:
        await consumer.commit(dict(pending))
        for offset in pending.values():
            say("committed", offset)
        pending.clear()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--redis", help="Redis URL (naive and idempotent modes)")
    parser.add_argument("--prefix", help="key prefix of this run (naive and idempotent modes)")
    parser.add_argument("--retry-topic", help="where the retry-topic mode publishes its copies")
    parser.add_argument("--batch", type=int, default=10, help="records per commit")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="block after the side effect of this offset, before its commit")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after this many s")
    args = parser.parse_args(argv)
    needed = ["retry_topic"] if args.mode == "retry-topic" else ["redis", "prefix"]
    missing = [f"--{name.replace('_', '-')}" for name in needed if not getattr(args, name)]
    if missing:
        parser.error(f"--mode {args.mode} needs {' and '.join(missing)}")
    return args


async def work(args) -> None:
    """Open what the mode's side effect needs, consume, close it."""
    if args.mode == "retry-topic":
        producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
        await producer.start()
        try:
            await consume(args, lambda record: publish(producer, args.retry_topic, record))
        finally:
            await producer.stop()
    else:
        client = redis.Redis.from_url(args.redis, decode_responses=True,
                                      socket_connect_timeout=3, socket_timeout=5)
        sender = EMAIL_SENDERS[args.mode]

        async def send_email(record) -> bool:
            return sender(client, args.prefix, record.key.decode())

        try:
            await consume(args, send_email)
        finally:
            client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        asyncio.run(work(args))
    except Exception as exc:  # one line the parent can show, not a traceback
        print(f"worker failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
