"""Running a learner's function in a child process: its source travels, with what it uses.

A notebook cell cannot be imported by another process, so a check that runs the learner's code in
a server or a worker process writes the function's source as a module, with a line for each global
it uses (`function_module`); what cannot travel is refused with a hint saying how to define it.
"""

from __future__ import annotations

import builtins
import dis
import inspect
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

from backendlab.checks import CheckFailed
from backendlab.processes import ProcessFailed
from backendlab.servers import RunningServer, start_server

_LITERALS = (bool, int, float, complex, str, bytes, type(None))


def _global_names(code: types.CodeType) -> set[str]:
    """The global names `code` and the functions nested in it read: what must travel with it."""
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


def write_module(fn: Callable, path: Path, helpers: bool = False) -> Path:
    """Write `fn`'s module (see `function_module`) to `path`, for a child process to import."""
    path.write_text(function_module(fn, helpers), encoding="utf-8")
    return path


def start_lab_server(server: str, fn: Callable, module_folder: Path, /,
                     **options) -> RunningServer:
    """Start the lab's `server` with `fn`, shipped as a module in `module_folder`, as its handler
    (`options` are the server's own, a `folder` among them); a server that cannot load it becomes
    a CheckFailed carrying the last line it printed, not a traceback."""
    path = write_module(fn, Path(module_folder) / "learner.py")
    try:
        return start_server(server, handler=f"{path}:{fn.__name__}", **options)
    except ProcessFailed as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1]
        raise CheckFailed(f"the server could not load {fn.__name__}: {last}") from None
