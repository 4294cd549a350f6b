"""Lab check suites: named checks run on a learner's code, reported as pass/fail with a hint.

A suite is a list of `Check(name, run)`. `run(*args)` returns an optional note on success (a
measured number, say) and raises `CheckFailed(hint)` or `AssertionError` on failure; any other
exception becomes a failed check whose hint names it in one line, so a learner never reads a
traceback wall. `run_checks` returns a `Report` that a notebook shows as a table.
"""

from __future__ import annotations

import builtins
import dis
import html
import inspect
import sys
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass

from backendlab import marks
from backendlab.describe import describe_error, one_line as _one_line
from backendlab.processes import ProcessFailed
from backendlab.servers import start_server

_LITERALS = (bool, int, float, complex, str, bytes, type(None))


class CheckFailed(AssertionError):
    """A check's verdict on the learner's code; the message is the hint saying what to change."""


@dataclass(frozen=True)
class Check:
    """One named check: `run(*args)` raises on failure and may return a note on success."""

    name: str
    run: Callable[..., str | None]


@dataclass(frozen=True)
class Result:
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


def select(suite: list[Check], only: list[str] | None) -> list[Check]:
    """The checks of `suite` named in `only` (all when None); a name that matches none is an error
    that lists the names."""
    chosen = [c for c in suite if only is None or c.name in only]
    if not chosen:
        raise ValueError(f"no check named {only!r}; checks: {', '.join(c.name for c in suite)}")
    return chosen


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


def _global_names(code: types.CodeType) -> set[str]:
    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _import_line(name: str, value) -> str | None:
    """The line that rebinds `name` to `value` in a fresh module, or None if no line can."""
    if inspect.ismodule(value):
        return f"import {value.__name__}" + ("" if value.__name__ == name else f" as {name}")
    if isinstance(value, _LITERALS):
        return f"{name} = {value!r}"
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    importable = getattr(sys.modules.get(module or ""), qualname or "", None) is value
    if module and module != "__main__" and importable:
        return f"from {module} import {qualname}" + ("" if qualname == name else f" as {name}")
    return None


def _wraps_builtin(name: str, value) -> bool:
    """Whether `value` is a notebook's stand-in for a builtin (IPython puts its own `open`, a
    wrapper of the builtin, in every kernel's namespace); the server process has the builtin."""
    return getattr(value, "__wrapped__", None) is getattr(builtins, name, object())


_MISSING = object()


def used_names(fn: Callable, helpers: bool = False) -> tuple[list, dict]:
    """The functions whose source must travel with `fn` (`fn` itself, plus, with `helpers`, the
    functions of its own notebook it calls, transitively) and the other globals they use
    (name -> value; an undefined name maps to a sentinel)."""
    functions, others, todo = [], {}, [fn]
    while todo:
        current = todo.pop(0)
        if current in functions:
            continue
        functions.append(current)
        for name in sorted(_global_names(current.__code__) - {current.__name__}):
            value = current.__globals__.get(name, _MISSING)
            if helpers and isinstance(value, types.FunctionType) \
                    and value.__globals__ is fn.__globals__:
                todo.append(value)
            else:
                others[name] = value
    return functions, others


def function_module(fn: Callable, helpers: bool = False) -> str:
    """Source of a module defining `fn`: a line for each global it uses, then its code.

    Checks run a learner's function in a real process, where a notebook cell cannot be
    imported, so the function's source travels. The modules, library objects and literal
    constants it names come along; with `helpers`, so do the notebook's own functions it calls;
    otherwise a helper defined in the notebook is refused (CheckFailed says so).
    """
    name = getattr(fn, "__name__", repr(fn))
    try:
        inspect.getsource(fn)
    except (OSError, TypeError):
        raise CheckFailed(f"cannot read the source of {name}: define it with `def` in a notebook "
                          "cell or a .py file") from None
    functions, others = used_names(fn, helpers)
    lines = []
    for global_name, value in sorted(others.items()):
        if value is _MISSING or _wraps_builtin(global_name, value):
            if hasattr(builtins, global_name):
                continue
            raise CheckFailed(f"{name} uses `{global_name}`, which is not defined")
        line = _import_line(global_name, value)
        if line is None:
            carried = ("imports, constants and functions" if helpers else f"{name} alone")
            where = "a function" if helpers else name
            raise CheckFailed(f"{name} uses `{global_name}` from elsewhere in the notebook, but "
                              f"the check runs your code in another process and carries "
                              f"{carried}: define `{global_name}` inside {where}")
        lines.append(line)
    sources = [textwrap.dedent(inspect.getsource(f)) for f in reversed(functions)]
    return "\n".join(lines) + "\n\n\n" + "\n\n".join(sources)


def start_lab_server(server: str, label: str, **options):
    """Start the lab's server on the learner's code; a server that cannot load it becomes a
    CheckFailed carrying the last line it printed, not a traceback."""
    try:
        return start_server(server, **options)
    except ProcessFailed as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1]
        raise CheckFailed(f"the server could not load {label}: {last}") from None
