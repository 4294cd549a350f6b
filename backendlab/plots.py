"""The suite's figures: one style, a few shapes that recur across notebooks.

Each function returns the matplotlib Figure so a notebook can show it and a test can inspect it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt

PALETTE = ["#d1495b", "#00798c", "#edae49", "#30638e", "#66a182", "#8d96a3"]
STYLE = {
    "figure.figsize": (9, 3.6),
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titleweight": "bold",
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "legend.frameon": False,
}


def figure(ncols: int = 1, width: float | None = None, height: float | None = None):
    """A new figure with the suite's style and `ncols` side-by-side axes."""
    with plt.rc_context(STYLE):
        size = STYLE["figure.figsize"]
        fig, axes = plt.subplots(1, ncols, figsize=(width or size[0], height or size[1]),
                                 squeeze=False)
    return fig, list(axes[0])


def finish(fig, title: str | None = None):
    """Apply the title and tight layout; close the pyplot handle so it shows exactly once."""
    if title:
        fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    plt.close(fig)
    return fig


def latency_timeline(series: Mapping[str, tuple], title: str = "Probe latency while the server works",
                     log: bool = True):
    """One line per label of (due times in s, latencies in s), latency shown in ms."""
    fig, (ax,) = figure()
    for label, (due, latency) in series.items():
        ax.plot(due, [v * 1000 for v in latency], ".-", markersize=3, linewidth=0.8, label=label)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("/health latency (ms)")
    if log:
        ax.set_yscale("log")
    ax.legend()
    return finish(fig, title)


def memory_timeline(series: Mapping[str, tuple], title: str = "Server memory (RSS) over time"):
    """One line per label of (times in s, RSS in bytes), shown in MB above each line's start."""
    fig, (ax,) = figure()
    for label, (times, rss) in series.items():
        base = rss[0] if rss else 0
        ax.plot(times, [(v - base) / 1e6 for v in rss], linewidth=1.5, label=label)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("RSS growth (MB)")
    ax.legend()
    return finish(fig, title)


def bars(values: Mapping[str, float], ylabel: str, title: str, log: bool = False, fmt: str = "{:.0f}"):
    """A bar per label, its value written on top."""
    fig, (ax,) = figure(width=7)
    labels = list(values)
    heights = [values[k] for k in labels]
    rects = ax.bar(labels, heights, color=PALETTE[: len(labels)])
    for rect, value in zip(rects, heights):
        ax.annotate(fmt.format(value), (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    return finish(fig, title)


def latency_with_bars(series: Mapping[str, tuple], values: Mapping[str, float], ylabel: str,
                      title: str, fmt: str = "{:.0f}"):
    """Probe latency over time (left, log ms) next to one bar per label (right), same colours."""
    fig, (left, right) = figure(ncols=2, width=11)
    for label, (due, latency) in series.items():
        left.plot(due, [v * 1000 for v in latency], ".-", markersize=3, linewidth=0.8, label=label)
    left.set_xlabel("time since start (s)")
    left.set_ylabel("/health latency (ms)")
    left.set_yscale("log")
    left.legend()
    labels = list(values)
    rects = right.bar(labels, [values[k] for k in labels], color=PALETTE[: len(labels)])
    for rect, label in zip(rects, labels):
        right.annotate(fmt.format(values[label]),
                       (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                       ha="center", va="bottom", fontsize=9)
    right.set_ylabel(ylabel)
    return finish(fig, title)


OUTCOME_COLORS = {"200 OK": PALETTE[1], "202 accepted": PALETTE[3], "queued, then parsed (client polls)": PALETTE[2],
                  "503 + Retry-After": PALETTE[0]}


def request_timeline(panels: Mapping[str, list[tuple]], title: str,
                     colors: Mapping[str, str] = OUTCOME_COLORS):
    """One panel per title; each request (lane, start s, end s, outcome) is a bar in its lane.

    Very short requests (a quick refusal) are drawn at least 20 ms wide so they stay visible.
    """
    fig, axes = figure(ncols=len(panels), width=5.5 * len(panels), height=3.8)
    for ax, (name, rows) in zip(axes, panels.items()):
        seen = set()
        for lane, start, end, outcome in rows:
            ax.barh(lane, max(end - start, 0.02), left=start, height=0.7,
                    color=colors.get(outcome, PALETTE[-1]),
                    label=None if outcome in seen else outcome)
            seen.add(outcome)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time since start (s)")
        ax.set_ylabel("user")
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
    return finish(fig, title)


def ttl_countdown(times, remaining_ms, ttl: float, title: str = "A Redis key's TTL counting down"):
    """Remaining TTL over time, with the moment the key disappeared marked."""
    fig, (ax,) = figure(width=7)
    alive = [(t, ms / 1000) for t, ms in zip(times, remaining_ms) if ms >= 0]
    gone = [t for t, ms in zip(times, remaining_ms) if ms == -2]
    ax.plot([t for t, _ in alive], [s for _, s in alive], ".-", label="PTTL (s left)")
    if gone:
        ax.axvline(gone[0], color=PALETTE[0], linestyle="--", label=f"key gone at {gone[0]:.2f} s")
    ax.axvline(ttl, color=PALETTE[3], linestyle=":", label=f"TTL set: {ttl:g} s")
    ax.set_xlabel("time since SET (s)")
    ax.set_ylabel("seconds left")
    ax.legend()
    return finish(fig, title)

