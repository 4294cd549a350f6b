"""`try_it`: three events through the learner's `process`, and what became of each, printed."""

from __future__ import annotations

from backendlab.checks import trial
from backendlab.topics.kafkaretry.checks.copies import role
from backendlab.topics.kafkaretry.checks.harness import MAX_ATTEMPTS
from backendlab.topics.kafkaretry.checks.scenario import Message, Observed, make_message
from backendlab.topics.kafkaretry.checks.session import Session
from backendlab.topics.kafkaretry.headers import decode

TRY_DELAY_MS = 300


def _try_messages() -> list[Message]:
    return [make_message("welcome", "healthy", {"id": "welcome", "type": "email"}, "user-1", "t-1"),
            make_message("fails-once", "flaky", {"id": "fails-once", "type": "websocket",
                                                "fail_times": 1}, "user-2", "t-2"),
            make_message("fax", "fatal", {"id": "fax", "type": "fax"}, "user-3", "t-3")]


def _trail(run: Observed, message: Message) -> str:
    """One line: each `deliver` outcome, then each copy with its metadata."""
    outcomes = [a["outcome"] for a in run.attempts.get(message.event_id, [])] or ["not called"]
    copies = []
    for n in range(1, MAX_ATTEMPTS + 1):
        topic = run.topics.retry(n) if n < MAX_ATTEMPTS else run.topics.dlt
        for copy in run.copies_of(message, topic):
            try:
                meta = decode(copy.headers)
            except ValueError as exc:
                copies.append(f"{role(run.topics, topic)} ({exc})")
                continue
            due = "" if meta is None or meta.due_ms is None else (
                f", due failed-at + {meta.due_ms - meta.failed_at_ms} ms")
            about = "no x-retry-* headers" if meta is None else (
                f"attempts {meta.attempts}, {meta.error_kind}{due}")
            copies.append(f"{role(run.topics, topic)} ({about})")
    return (f"  {message.label:<11} deliver: {', '.join(outcomes):<22} "
            f"copies: {'; '.join(copies) or 'none'}")


def try_it(process) -> None:
    """Send three events through `process` (one healthy, one whose downstream fails once, one of
    an unknown type) and print what became of each. Takes a few seconds."""
    with trial(Session(process)) as session:
        run = session.scenario(_try_messages(), TRY_DELAY_MS)
        print(f"3 events, lab.max_attempts = {MAX_ATTEMPTS}, lab.delay_ms(1) = {TRY_DELAY_MS} ms")
        for message in run.messages:
            print(_trail(run, message))
        for record, text in run.escapes:
            print(f"FAIL: {session.name} let {text} escape on {record.value[:40]!r}")
        print("expected: welcome delivered; fails-once transient, copied to lab.topics.retry(1) "
              "due 300 ms later, then delivered; fax fatal, copied to lab.topics.dlt")
