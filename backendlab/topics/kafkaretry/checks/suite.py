"""Lab 07's checks, each judging the scenario run or the crash run of the session it is given."""

from __future__ import annotations

import statistics

from backendlab.checks import Check, CheckFailed
from backendlab.topics.kafkaretry.checks.copies import (expect_copy, no_escape, one_copy,
                                                        read_metadata, role)
from backendlab.topics.kafkaretry.checks.crash import (CRASH_PLAN, KILL_POINTS, MISSED_KILL,
                                                       CrashOutcome)
from backendlab.topics.kafkaretry.checks.harness import (DELAY_MS, MAX_ATTEMPTS, backoff_ms,
                                                         times_delivered)
from backendlab.topics.kafkaretry.checks.session import Session

LATENCY_LIMIT_MS = DELAY_MS // 2  # for the 90th percentile: one scheduling hiccup is tolerated
EARLY_SLACK_MS = 50  # an attempt this much before its backoff ended counts as early


def _healthy(session: Session) -> str:
    run = session.scenario()
    healthy = run.of("healthy")
    for message in healthy:
        no_escape(run, message, session.name)
        count = run.delivered(message)
        if count != 1:
            raise CheckFailed(f"{message.label} was delivered {count} times: parse record.value "
                              "with json.loads and await lab.deliver(event), once")
    for topic, (committed, end) in run.commits.items():
        if committed != end:
            raise CheckFailed(f"{role(run.topics, topic)} holds {end} records, but its committed "
                              f"offset is {committed}: await lab.commit(record) once each record "
                              "is done (delivered, or copied to a retry topic or the DLT)")
    return f"{len(healthy)} healthy events delivered once each; every record committed"


def _fatal(session: Session) -> str:
    run = session.scenario()
    retries = [run.topics.retry(n) for n in range(1, MAX_ATTEMPTS)]
    for message in run.of("fatal"):
        no_escape(run, message, session.name)
        for topic in retries:
            if run.copies_of(message, topic):
                raise CheckFailed(f"{message.label} went to {role(run.topics, topic)}: a "
                                  "ValueError, KeyError or JSON error fails the same way every "
                                  "time; send it straight to lab.topics.dlt")
        tried = len(run.attempts.get(message.event_id, []))
        if tried > 1:
            raise CheckFailed(f"lab.deliver was called {tried} times for {message.label}: a "
                              "fatal error is not retried")
        copy = one_copy(run, message, run.topics.dlt,
                        "a fatal error goes to lab.topics.dlt after its first attempt")
        meta = read_metadata(run, copy, message)
        expect_copy(run, copy, message, meta, 1, "fatal")
        if message.event_id == "fax-1" and not all(
                word in meta.error for word in ("ValueError", "unknown event type")):
            raise CheckFailed(f"the DLT copy of {message.label} says x-retry-error "
                              f"{meta.error!r}: write the exception as `TypeName: message`, "
                              "f\"{type(exc).__name__}: {exc}\"")
    return (f"{len(run.of('fatal'))} fatal messages in the DLT after one attempt, with metadata, "
            "key, value and headers")


def _transient(session: Session) -> str:
    run = session.scenario()
    (message,) = run.of("poison")
    no_escape(run, message, session.name)
    first_seen = None
    for n in range(1, MAX_ATTEMPTS):
        copy = one_copy(run, message, run.topics.retry(n),
                        f"after attempt {n} failed with a ConnectionError (transient), copy it "
                        f"to lab.topics.retry({n})")
        meta = read_metadata(run, copy, message)
        expect_copy(run, copy, message, meta, n, "transient")
        first_seen = first_seen or meta.first_seen_ms
        if meta.first_seen_ms != first_seen:
            raise CheckFailed(f"x-retry-first-seen-ms changed from {first_seen} to "
                              f"{meta.first_seen_ms} in lab.topics.retry({n}): carry it over")
        if meta.due_ms is None or meta.due_ms - meta.failed_at_ms < backoff_ms(n):
            gap = "no x-retry-due-ms" if meta.due_ms is None else (
                f"x-retry-due-ms {meta.due_ms - meta.failed_at_ms} ms after its failed-at")
            raise CheckFailed(f"the copy in lab.topics.retry({n}) has {gap}: it must be due "
                              f"lab.delay_ms({n}) = {backoff_ms(n)} ms after the failure")
    copy = one_copy(run, message, run.topics.dlt,
                    f"after attempt {MAX_ATTEMPTS} of lab.max_attempts = {MAX_ATTEMPTS} failed, "
                    "copy it to lab.topics.dlt")
    expect_copy(run, copy, message, read_metadata(run, copy, message), MAX_ATTEMPTS, "transient")
    tried = len(run.attempts.get(message.event_id, []))
    if tried != MAX_ATTEMPTS:
        raise CheckFailed(f"lab.deliver was called {tried} times for {message.label}; with "
                          f"lab.max_attempts = {MAX_ATTEMPTS}, exactly {MAX_ATTEMPTS}")
    hops = ", ".join(f"retry({n})" for n in range(1, MAX_ATTEMPTS))
    delays = ", ".join(str(backoff_ms(n)) for n in range(1, MAX_ATTEMPTS))
    return f"{hops}, then the DLT after {MAX_ATTEMPTS} attempts; due after {delays} ms"


def _due(session: Session) -> str:
    run = session.scenario()
    gaps = []
    for message in run.of("poison") + run.of("flaky"):
        no_escape(run, message, session.name)
        times = [a["at_ms"] for a in run.attempts.get(message.event_id, [])]
        if len(times) < 2:
            raise CheckFailed(f"{message.label} was attempted {len(times)} time(s): after a "
                              "transient failure it comes back from a retry topic")
        for n, (before, after) in enumerate(zip(times, times[1:]), 1):
            if after - before < backoff_ms(n) - EARLY_SLACK_MS:
                raise CheckFailed(f"attempt {n + 1} of {message.label} ran {after - before:.0f} "
                                  f"ms after attempt {n}, but lab.delay_ms({n}) is {backoff_ms(n)} "
                                  f"ms: due = failed-at + lab.delay_ms({n}) on the copy, and no "
                                  "second lab.deliver call inside process")
            gaps.append(after - before - backoff_ms(n))
    return f"every retry came after its backoff (at most {max(gaps):.0f} ms later)"


def _recovers(session: Session) -> str:
    run = session.scenario()
    (message,) = run.of("flaky")
    no_escape(run, message, session.name)
    for copy in run.copies_of(message, run.topics.dlt):
        said = dict(copy.headers).get("x-retry-attempts", b"?").decode(errors="replace")
        raise CheckFailed(f"{message.label} reached the DLT with x-retry-attempts {said}; it "
                          f"fails twice and is delivered on attempt {MAX_ATTEMPTS}: dead-letter "
                          f"only when attempt lab.max_attempts = {MAX_ATTEMPTS} fails")
    count = run.delivered(message)
    if count != 1:
        raise CheckFailed(f"{message.label} was delivered {count} times; it should be delivered "
                          f"once, on attempt {MAX_ATTEMPTS} (mark an event as delivered only "
                          "after lab.deliver returned)")
    return f"delivered once, on attempt {MAX_ATTEMPTS}; never dead-lettered"


def _not_held(session: Session) -> str:
    run = session.scenario()
    latencies = []
    for message in run.of("healthy"):
        no_escape(run, message, session.name)
        done = [a["at_ms"] for a in run.attempts.get(message.event_id, [])
                if a["outcome"] == "delivered"]
        if not done:
            raise CheckFailed(f"{message.label} was never delivered")
        latencies.append(done[0] - message.sent_ms)
    typical = p90(latencies)
    if typical > LATENCY_LIMIT_MS:
        raise CheckFailed(f"healthy events waited up to {typical:.0f} ms (90th percentile) while "
                          f"the failing one retried (limit {LATENCY_LIMIT_MS} ms; the first "
                          f"backoff is {DELAY_MS} ms): do not sleep in process; copy the record "
                          "to its retry topic with a due time and return; the loop holds that "
                          "topic until then")
    return (f"healthy latency {typical:.0f} ms (90th percentile; worst {max(latencies):.0f} ms) "
            f"while the failing event retried (limit {LATENCY_LIMIT_MS} ms)")


def p90(values: list[float]) -> float:
    """The 90th percentile: robust to one event that a busy machine delayed, unlike the max."""
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _kills(outcome: CrashOutcome) -> str:
    """Where the runs died, in order, as the messages say it."""
    return ", then ".join(KILL_POINTS[said["crashed"]] for said in outcome.runs
                          if "crashed" in said)


def _missed_kill(outcome: CrashOutcome) -> None:
    """Fail, saying why, when a run finished where the plan kills it: the crash checks would judge
    runs that never died at the moments they are about."""
    for n, crash in enumerate(CRASH_PLAN[:-1]):
        said = outcome.runs[n] if n < len(outcome.runs) else {}
        if said.get("crashed") != crash[0]:
            raise CheckFailed(f"the check could not kill your consumer {KILL_POINTS[crash[0]]}: "
                              f"{MISSED_KILL[crash[0]]}")


def _loses_nothing(session: Session) -> str:
    outcome = session.crash()
    lost = [i for i in outcome.ids if not times_delivered(outcome.attempts, i)]
    if lost:
        raise CheckFailed(f"{', '.join(lost)} never delivered after the consumer was killed "
                          f"({_kills(outcome)}) and restarted from its committed offset: commit a "
                          "record last, after lab.deliver returned or after its copy's "
                          "send_and_wait returned; mark an event delivered only after "
                          "lab.deliver returned")
    _missed_kill(outcome)
    return f"killed {_kills(outcome)}, restarted: all {len(outcome.ids)} events delivered"


def _no_duplicates(session: Session) -> str:
    outcome = session.crash()
    _missed_kill(outcome)
    for event_id in outcome.ids:
        count = times_delivered(outcome.attempts, event_id)
        if count > 1:
            raise CheckFailed(f"{event_id} was delivered {count} times: after a crash, Kafka "
                              "delivers again every record after the last commit, and a copy "
                              "acknowledged before the crash stays in its retry topic; remember "
                              "delivered ids in Redis (lab.redis, lab.key(...)) and skip an event "
                              "already delivered")
    return ("killed after a retry copy was acknowledged and after a delivery, each before its "
            "commit: no event delivered twice")


SUITE = [
    Check("healthy events are delivered once and committed", _healthy),
    Check("a fatal error goes to the DLT at once, with metadata", _fatal),
    Check("a transient error is retried with backoff, then dead-lettered", _transient),
    Check("no attempt runs before its due time", _due),
    Check("an event that recovers is delivered exactly once", _recovers),
    Check("healthy events are not held behind a failing one", _not_held),
    Check("a crash loses no event", _loses_nothing),
    Check("a crash causes no duplicate delivery", _no_duplicates),
]
