"""Lab check suites: named checks run on a learner's code, reported as pass/fail with a hint.

A suite is a list of `Check(name, run)`. `run(lab)` returns an optional note on success (a
measured number, say) and raises `CheckFailed(hint)` or `AssertionError` on failure; any other
exception becomes a failed check whose hint names it in one line, so a learner never reads a
traceback wall. A lab's `check()` calls `run_lab`: it picks the checks named in `only=`, sets the
lab up, runs them, closes the lab whatever happens, and returns a `Report` that a notebook shows as
a table. `backendlab.checks.child` ships a learner's function to a child process.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from backendlab import marks
from backendlab.describe import describe_error, one_line as _one_line


class CheckFailed(AssertionError):
    """A check's verdict on the learner's code; the message is the hint saying what to change."""


@dataclass(frozen=True)
class Check:
    """One named check: `run(*args)` raises on failure and may return a note on success."""

    name: str
    run: Callable[..., str | None]


@dataclass(frozen=True)
class Result:
    """One check's verdict, with its note on success or its hint on failure."""

    name: str
    passed: bool
    message: str = ""


def _mark(passed: bool) -> str:
    return marks.badge("right", "pass") if passed else marks.badge("wrong", "fail")


@dataclass(repr=False)
class Report:
    """The outcome of a suite: text for a terminal, an HTML table for a notebook."""

    title: str
    results: list[Result]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def summary(self) -> str:
        count = sum(result.passed for result in self.results)
        return f"{self.title}: {count} of {len(self.results)} checks passed"

    def __str__(self) -> str:
        lines = [self.summary]
        for result in self.results:
            note = f": {result.message}" if result.message else ""
            lines.append(f"  {marks.verdict(result.passed)}  {result.name}{note}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        left = "style='text-align:left'"
        rows = "".join(
            f"<tr><td>{_mark(r.passed)}</td><td {left}>{html.escape(r.name)}</td>"
            f"<td {left}>{html.escape(r.message)}</td></tr>" for r in self.results)
        return (f"<p><b>{html.escape(self.summary)}</b></p><table><thead><tr><th></th>"
                f"<th {left}>check</th><th {left}>hint</th></tr></thead><tbody>{rows}</tbody>"
                "</table>")

    def raise_if_failed(self) -> "Report":
        """Raise AssertionError with the whole report unless every check passed (for tests)."""
        if not self.passed:
            raise AssertionError(str(self))
        return self


def select(suite: list[Check], only: str | list[str] | None) -> list[Check]:
    """The checks of `suite` named in `only` (all when None; one name may come as a str), in the
    suite's order; a name no check has is an error listing the names, so a typo runs nothing."""
    if only is None:
        return list(suite)
    wanted = [only] if isinstance(only, str) else list(only)
    names = [check.name for check in suite]
    unknown = [name for name in wanted if name not in names]
    if unknown or not wanted:
        asked = ", ".join(map(repr, unknown)) or "in an empty only="
        raise ValueError(f"no check named {asked}; the checks are: {', '.join(map(repr, names))}")
    return [check for check in suite if check.name in wanted]


def within(measured: str, value: float, limit: float, shown: str, advice: str) -> str:
    """The note "`measured` (limit `shown`)" when `value` is at most `limit`, else a CheckFailed
    giving the measure, the limit and `advice`: how a check that measures states its verdict."""
    if value > limit:
        raise CheckFailed(f"{measured}, limit {shown}: {advice}")
    return f"{measured} (limit {shown})"


def run_checks(suite: list[Check], *args, title: str = "checks") -> Report:
    """Run every check of `suite` with `args`, each isolated from the others' failures."""
    results = []
    for check in suite:
        try:
            note = check.run(*args)
        except AssertionError as exc:
            results.append(Result(check.name, False, _one_line(str(exc)) or "assertion failed"))
        except Exception as exc:
            results.append(Result(check.name, False, describe_error(exc)))
        else:
            results.append(Result(check.name, True, note or ""))
    return Report(title, results)


class Lab(Protocol):
    """What a suite's checks are run on: the learner's code and what the checks made for it."""

    def close(self) -> None:
        """Release everything the checks made (servers, keys, topics, files)."""


def run_lab(title: str, suite: list[Check], setup: Callable[[], Lab],
            only: str | list[str] | None = None) -> Report:
    """Run the checks of `suite` named in `only` (all when None) on the lab `setup()` makes, then
    close it, even when a check is interrupted: every lab's `check()` runs its suite this way.

    Names are checked before `setup` runs, so a typo in `only` costs nothing and leaves nothing.
    """
    chosen = select(suite, only)
    with contextlib.closing(setup()) as lab:
        return run_checks(chosen, lab, title=title)


@contextlib.contextmanager
def trial(lab: Lab):
    """Lend `lab` to a lab's `try_it`, then close it; a CheckFailed inside is printed as one FAIL
    line, so trying an unfinished function shows the hint and no traceback."""
    try:
        yield lab
    except CheckFailed as exc:
        print(f"FAIL: {exc}")
    finally:
        lab.close()
