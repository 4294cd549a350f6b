"""Reading what the learner's code left: which topic a copy is in, as the task names it, and the
metadata every retry or dead-letter copy must carry.
"""

from __future__ import annotations

from backendlab.checks import CheckFailed
from backendlab.topics.kafkaretry.checks.scenario import Message, Observed
from backendlab.topics.kafkaretry.headers import decode
from backendlab.topics.kafkaretry.topics import RetryTopics


def role(topics: RetryTopics, name: str) -> str:
    """How the task names a topic: lab.topics.source, lab.topics.retry(n) or lab.topics.dlt."""
    if name == topics.dlt:
        return "lab.topics.dlt"
    if name in topics.retry_names:
        return f"lab.topics.retry({topics.retry_names.index(name) + 1})"
    return "lab.topics.source"


def no_escape(run: Observed, message: Message, name: str) -> None:
    """Fail when an exception escaped `process` on `message`: a consumer must catch it."""
    for record, text in run.escapes:
        if record.value == message.value:
            raise CheckFailed(f"{name} let {text} escape on {message.label} (from "
                              f"{role(run.topics, record.topic)}): catch it and copy the record "
                              "to its retry topic or the DLT, then commit it")


def one_copy(run: Observed, message: Message, topic: str, why: str):
    """The one copy of `message` in `topic`; fail, saying `why` it goes there, if none or many."""
    copies = run.copies_of(message, topic)
    where = role(run.topics, topic)
    if not copies:
        raise CheckFailed(f"{message.label} never reached {where}: {why}")
    if len(copies) > 1:
        raise CheckFailed(f"{message.label} is in {where} {len(copies)} times: copy a record "
                          "once per failed attempt")
    return copies[0]


def read_metadata(run: Observed, copy, message: Message):
    """The x-retry-* metadata of `copy`; fail when it is missing or does not decode."""
    where = role(run.topics, copy.topic)
    try:
        meta = decode(copy.headers)
    except ValueError as exc:
        raise CheckFailed(f"the copy of {message.label} in {where}: {exc}; write every "
                          "x-retry-* header of the task's table") from None
    if meta is None:
        raise CheckFailed(f"the copy of {message.label} in {where} has no x-retry-* headers: add "
                          "the metadata of the task's table")
    return meta


def expect_copy(run: Observed, copy, message: Message, meta, attempts: int, kind: str) -> None:
    """The metadata every copy of `message` must carry: origin, attempts, kind, error, times, and
    the message's own key and headers."""
    where = f"the copy of {message.label} in {role(run.topics, copy.topic)}"
    origin = (meta.original_topic, meta.original_partition, meta.original_offset)
    if origin != (run.topics.source, 0, message.offset):
        raise CheckFailed(f"{where} names its origin {origin[0]} partition {origin[1]} offset "
                          f"{origin[2]}, but it came from lab.topics.source partition 0 offset "
                          f"{message.offset}: a retry copy carries the original-* headers over")
    if meta.attempts != attempts:
        raise CheckFailed(f"{where} says x-retry-attempts {meta.attempts}, but {attempts} "
                          f"attempt{'s' if attempts > 1 else ''} failed: count every attempt "
                          "made so far, the first included")
    if meta.error_kind != kind:
        raise CheckFailed(f"{where} says x-retry-error-kind {meta.error_kind!r}, not {kind!r}: a "
                          "ConnectionError is transient; ValueError, KeyError and JSON errors "
                          "are fatal")
    if not meta.error.strip():
        raise CheckFailed(f"{where} has an empty x-retry-error: write `TypeName: message`")
    low, high = run.started_ms - 1000, run.ended_ms + 1000
    for header, value in (("first-seen", meta.first_seen_ms), ("failed-at", meta.failed_at_ms)):
        if not low <= value <= high:
            raise CheckFailed(f"{where} has x-retry-{header}-ms {value}, not a time during the "
                              "check: write lab.now_ms() (epoch milliseconds)")
    if meta.first_seen_ms > meta.failed_at_ms:
        raise CheckFailed(f"{where} was first seen after it failed last: x-retry-first-seen-ms "
                          "is when the first attempt failed, carried over from copy to copy")
    if copy.key != message.key:
        raise CheckFailed(f"{where} has key {copy.key!r}, not {message.key!r}: send the copy "
                          "with key=record.key")
    if not set(message.headers) <= {(name, bytes(value)) for name, value in copy.headers}:
        raise CheckFailed(f"{where} lost the record's own header {message.headers[0][0]}: keep "
                          "record.headers and add the x-retry-* ones")
