"""One line for an exception, so a learner or a client reads what went wrong, not a traceback.

Used by the lab checks (a failed check's hint) and the lab servers (a crashed handler's 500).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable


def one_line(text: str) -> str:
    """`text` with every run of whitespace, newlines included, made one space."""
    return " ".join(text.split())


def describe_error(exc: BaseException, fn: Callable | None = None) -> str:
    """One line naming an exception and, when it came from `fn`, the line of `fn` that raised it."""
    text = type(exc).__name__ + (f": {one_line(str(exc))}" if str(exc) else "")
    code = getattr(fn, "__code__", None)
    lines = [line for frame, line in traceback.walk_tb(exc.__traceback__)
             if code is not None and frame.f_code.co_filename == code.co_filename]
    if lines:
        text += f" (line {lines[-1] - code.co_firstlineno + 1} of {fn.__name__})"
    return text
