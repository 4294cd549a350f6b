"""Lab 07's checks: a Kafka consumer's `process(record, lab)` that retries, backs off, dead-letters
and survives a crash, written without the kit's router.

The harness runs the retry loop (`RetryLoop`: it calls `process` for each due record of the source
topic and its retry topics, and holds a retry topic until its head's `x-retry-due-ms`). One
scenario feeds healthy events, fatal ones, one that always fails and one that fails twice into
fresh topics; the checks read what it left: deliveries (logged in Redis by `lab.deliver`), the
copies in the retry and dead-letter topics, and the committed offsets. The crash checks run
`process` in a real child process and SIGKILL it three times, restarting it after each: just before
its first retry copy's send, just after a retry copy was acknowledged (its record not committed),
and just before it commits a source record. Topics are deleted and Redis keys removed afterwards.

Modules: `harness` (the `Lab` that `process` is given), `crashing_producer` (its producer in the
crash check), `learner` (refusing, calling and describing `process`), `scenario` (the events and
what they left), `copies` (reading the retry and dead-letter copies), `crash` (the child process
and its kill plan), `session` (each run made once per check call), `suite` (the checks), `tryout`
(`try_it`).
"""

from __future__ import annotations

from backendlab.checks import Report, run_lab
from backendlab.topics.kafkaretry.checks.session import Session
from backendlab.topics.kafkaretry.checks.suite import SUITE
from backendlab.topics.kafkaretry.checks.tryout import try_it

__all__ = ["SUITE", "check", "try_it"]


def check(process, only: str | list[str] | None = None) -> Report:
    """Run lab 07's checks (or those named in `only`) on `process`, your `async def
    process(record, lab)`; deletes the topics and Redis keys they made. Takes about 15 s."""
    return run_lab(f"Lab 07: {getattr(process, '__name__', 'process')}", SUITE,
                   lambda: Session(process), only)
