"""A process's peak memory over a window, exactly: Linux's high-water mark, reset on demand.

Sampling RSS every few ms misses a peak that lasts less than the interval (a fast upload's
buffer is gone within milliseconds). The kernel tracks the maximum itself (VmHWM); writing "5"
to /proc/PID/clear_refs resets it to the current RSS, so peak minus start is what the window
added, however brief.
"""

from __future__ import annotations

from pathlib import Path


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def current_rss(pid: int) -> int:
    """The process's resident memory now, in bytes."""
    return _status_kb(pid, "VmRSS") * 1024


class PeakWindow:
    """`with PeakWindow(pid) as window: ...` then `window.growth`: peak RSS above the start."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start = self.peak = 0

    def __enter__(self) -> "PeakWindow":
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.start = current_rss(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        self.peak = _status_kb(self.pid, "VmHWM") * 1024

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.start)
