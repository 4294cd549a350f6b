"""Running a coroutine from synchronous code, which a notebook needs: its kernel's loop is busy."""

from __future__ import annotations

import asyncio
import threading


def run_coroutine(coro, timeout: float = 15.0):
    """Run a coroutine to completion from sync code, even inside a kernel's running loop."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(asyncio.wait_for(coro, timeout))
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if "error" in result:
        raise result["error"]
    if "value" not in result:
        raise TimeoutError(f"no answer within {timeout}s")
    return result["value"]
