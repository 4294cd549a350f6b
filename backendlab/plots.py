"""The suite's figures: one style, a few shapes that recur across notebooks.

Each function returns the matplotlib Figure so a notebook can show it and a test can inspect it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

if matplotlib.get_backend().lower() == "agg" or not matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
