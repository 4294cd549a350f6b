"""The learner's `process`: refused when it cannot be checked, called for the retry loop, and its
failures described by the line of the learner's code that raised them.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback

from backendlab.checks import CheckFailed, describe_error
from backendlab.checks.child import used_names
from backendlab.topics.kafkaretry.checks.harness import Lab

CALL_LIMIT_S = 10.0  # one call of process
FORBIDDEN = ("backendlab.topics.kafkaretry.router", "backendlab.topics.kafkaretry.errors")


def validate(fn) -> None:
    """Refuse what cannot be checked: a sync function, or one that uses the kit's router."""
    name = getattr(fn, "__name__", "process")
    if not inspect.iscoroutinefunction(fn):
        raise CheckFailed(f"pass your `async def {name}(record, lab)` function itself (not a "
                          "call of it); the check awaits it for each record")
    for global_name, value in used_names(fn, helpers=True)[1].items():
        module = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "")
        if module in FORBIDDEN or module == "backendlab.topics.kafkaretry":
            raise CheckFailed(f"{name} uses `{global_name}` from {module}: this lab asks you to "
                              "write that decision yourself (backendlab.topics.kafkaretry.headers "
                              "is fine)")


def describe_failure(exc: BaseException, fn) -> str:
    """One line naming `exc` and the line of the learner's code (process or a helper) that
    raised it."""
    text = describe_error(exc)
    filename = fn.__code__.co_filename
    mine = [(frame, line) for frame, line in traceback.walk_tb(exc.__traceback__)
            if frame.f_code.co_filename == filename]
    if mine:
        frame, line = mine[-1]
        text += f" (line {line - frame.f_code.co_firstlineno + 1} of {frame.f_code.co_name})"
    return text


class Calls:
    """Calls `process` for the loop; notes what escaped it (record, one line) and when it last
    ran."""

    def __init__(self, fn, lab: Lab):
        self.fn, self.lab = fn, lab
        self.escapes: list = []
        self.unwritten: BaseException | None = None
        self.last = time.monotonic()

    async def __call__(self, record) -> None:
        if self.unwritten:
            return
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.fn(record, self.lab), CALL_LIMIT_S)
        except NotImplementedError as exc:
            self.unwritten = exc
        except Exception as exc:
            hung = time.monotonic() - started >= CALL_LIMIT_S
            self.escapes.append((record, f"a call that ran for {CALL_LIMIT_S:.0f} s" if hung
                                 else describe_failure(exc, self.fn)))
        self.last = time.monotonic()
