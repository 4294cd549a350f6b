"""Lab 01's checks: a CSV upload summarised as it streams, correctly, in constant memory.

`check(summarize_csv)` ships the learner's function to a real csvlab server (see
`backendlab.checks.child`), uploads CSVs to it, feeds it odd chunk sizes directly, and measures
/health latency and the server's memory during a 20 MB upload. The limits sit between what a
streaming handler and a buffer-then-parse handler measure on a 2-core machine, far from both.

Modules: `csvdata` (the CSVs sent and the summary each must give), `harness` (the learner's
function fed directly and served by csvlab), `suite` (the checks).
"""

from __future__ import annotations

from backendlab.checks import CheckFailed, Report, describe_error, run_lab
from backendlab.topics.eventloop.checks.csvdata import SAMPLE, differences, reference
from backendlab.topics.eventloop.checks.harness import Lab, feed
from backendlab.topics.eventloop.checks.suite import SUITE

__all__ = ["SAMPLE", "SUITE", "check", "reference", "try_it"]


def check(fn, only: str | list[str] | None = None) -> Report:
    """Run lab 01's checks (or the ones named in `only`) on `fn` (your summarize_csv); stops the
    server and removes temp files."""
    return run_lab(f"Lab 01: {getattr(fn, '__name__', 'your function')}", SUITE,
                   lambda: Lab(fn), only)


def try_it(fn, size: int = 7) -> None:
    """Feed SAMPLE to `fn` in `size`-byte chunks and print what it returned next to the answer."""
    expected = reference(SAMPLE)
    print(f"expected {expected}")
    try:
        got = feed(fn, SAMPLE.encode(), size)
    except CheckFailed as exc:
        print(f"FAIL: {exc}")
        return
    except Exception as exc:
        print(f"FAIL: {getattr(fn, '__name__', 'it')} raised {describe_error(exc, fn)}")
        return
    print(f"got      {got}")
    problems = differences(expected, got)
    print("FAIL: " + "; ".join(problems) if problems else "same")
