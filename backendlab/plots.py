"""The suite's figures: one style, and the generic shapes results draw themselves with.

A result's `plot()` (in its topic's experiments) builds its figure from these, or from `figure`
and `finish` for a shape only it has. Each returns the matplotlib Figure, so a notebook can show
it and a test can inspect it. This module imports no topic.
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


def reference_line(ax, value: float, label: str | None) -> None:
    """A dashed black horizontal line at `value`, in the legend as `label`: the limit or ideal to
    compare against."""
    ax.axhline(value, color="black", linestyle="--", linewidth=1, label=label)


def _latency_lines(ax, series: Mapping[str, tuple]) -> None:
    """One line per label of (due times in s, /health latencies in s), latency shown in ms."""
    for label, (due, latency) in series.items():
        ax.plot(due, [v * 1000 for v in latency], ".-", markersize=3, linewidth=0.8, label=label)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("/health latency (ms)")


def _valued_bars(ax, values: Mapping[str, float], fmt: str, x=None, **bar_options):
    """One bar per label (at `x`, by default the labels), in the palette's order, its value
    written on top; returns the bars."""
    labels = list(values)
    rects = ax.bar(labels if x is None else x, [values[k] for k in labels], color=PALETTE[: len(labels)],
                   **bar_options)
    for rect, label in zip(rects, labels):
        ax.annotate(fmt.format(values[label]), (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=9)
    return rects


def latency_timeline(series: Mapping[str, tuple], title: str = "Probe latency while the server works",
                     log: bool = True):
    """One line per label of (due times in s, latencies in s), latency shown in ms."""
    fig, (ax,) = figure()
    _latency_lines(ax, series)
    if log:
        ax.set_yscale("log")
    ax.legend()
    return finish(fig, title)


def memory_timeline(series: Mapping[str, tuple], title: str = "Server memory (RSS) over time",
                    reference: tuple[float, str] | None = None):
    """One line per label of (times in s, RSS in bytes), shown in MB above each line's start;
    `reference` is (MB, label) of a dashed line to compare against."""
    fig, (ax,) = figure()
    for label, (times, rss) in series.items():
        base = rss[0] if rss else 0
        ax.plot(times, [(v - base) / 1e6 for v in rss], linewidth=1.5, label=label)
    if reference:
        reference_line(ax, *reference)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("RSS growth (MB)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig, title)


def bars(values: Mapping[str, float], ylabel: str, title: str, log: bool = False, fmt: str = "{:.0f}",
         reference: tuple[float, str] | None = None):
    """A bar per label, its value written on top; `reference` is (value, label) of a dashed line."""
    fig, (ax,) = figure(width=7)
    _valued_bars(ax, values, fmt)
    ax.set_ylabel(ylabel)
    if reference:
        reference_line(ax, *reference)
        ax.legend(loc="upper left")
    ax.margins(y=0.15)
    if log:
        ax.set_yscale("log")
    return finish(fig, title)


def lines(x, series: Mapping[str, list[float]], xlabel: str, ylabel: str, title: str,
          reference: tuple[list[float], str] | None = None):
    """One line with markers per label over the same x values; `reference` is (values over x,
    label) of a dashed line to compare against."""
    fig, (ax,) = figure(width=7)
    for label, values in series.items():
        ax.plot(x, values, "o-", linewidth=1.8, label=label)
    if reference:
        ax.plot(x, reference[0], "--", color="black", linewidth=1, label=reference[1])
    ax.set_xticks(list(x))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return finish(fig, title)


def bar_panels(panels: Mapping[str, Mapping[str, float]], title: str, fmt: str = "{:.2f}",
               references: Mapping[str, tuple[float, str]] | None = None):
    """Side-by-side bar charts, one per panel title, each with the same labels and colours, one
    legend below them all; `references` maps a panel title to (value, label) of a dashed line."""
    fig, axes = figure(ncols=len(panels), width=3.6 * len(panels), height=3.8)
    for ax, (name, values) in zip(axes, panels.items()):
        _valued_bars(ax, values, fmt, x=range(len(values)), label=list(values), width=0.6)
        if name in (references or {}):
            value, label = references[name]
            reference_line(ax, value, None)
            ax.annotate(label, (len(values) - 0.35, value), xytext=(0, 3), textcoords="offset points",
                        ha="right", fontsize=8)
        ax.set_xticks([])
        ax.set_xlim(-0.7, len(values) - 0.3)
        ax.margins(y=0.18)
        ax.set_title(name, fontsize=10, wrap=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig = finish(fig, title)
    fig.subplots_adjust(bottom=0.14)
    return fig


def latency_with_bars(series: Mapping[str, tuple], values: Mapping[str, float], ylabel: str,
                      title: str, fmt: str = "{:.0f}"):
    """Probe latency over time (left, log ms) next to one bar per label (right), same colours."""
    fig, (left, right) = figure(ncols=2, width=11)
    _latency_lines(left, series)
    left.set_yscale("log")
    left.legend()
    _valued_bars(right, values, fmt)
    right.set_ylabel(ylabel)
    return finish(fig, title)


def request_timeline(panels: Mapping[str, list[tuple]], title: str, colors: Mapping[str, str]):
    """One panel per title; each request (lane, start s, end s, outcome) is a bar in its lane,
    coloured by `colors[outcome]` (grey for an outcome it lacks).

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


def latency_strip(series: Mapping[str, list[float]], title: str, log: bool = True):
    """One column of dots per label (each a request's latency in s, shown in ms), median marked."""
    fig, (ax,) = figure(width=7)
    for index, (label, values) in enumerate(series.items()):
        ms = sorted(v * 1000 for v in values)
        ax.plot([index] * len(ms), ms, "o", alpha=0.5, color=PALETTE[index % len(PALETTE)])
        if ms:
            median = ms[len(ms) // 2]
            ax.hlines(median, index - 0.25, index + 0.25, color="black")
            ax.annotate(f"median {median:.1f} ms", (index + 0.28, median), va="center", fontsize=9)
    ax.set_xticks(range(len(series)), list(series))
    ax.set_xlim(-0.5, len(series) - 0.2)
    ax.set_ylabel("latency (ms)")
    if log:
        ax.set_yscale("log")
    return finish(fig, title)


def ratio_lines(x, series: Mapping[str, list[float]], xlabel: str, ylabel: str, title: str,
                logx: bool = True):
    """One line per label of ratios (0 to 1) against `x`, e.g. hit and stale ratios against TTL."""
    fig, (ax,) = figure(width=7)
    for label, values in series.items():
        ax.plot(x, values, "o-", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    if logx:
        ax.set_xscale("log")
    ax.legend()
    return finish(fig, title)


def _grouped(ax, groups: Mapping[str, Mapping[str, float]], fmt: str) -> None:
    """Bars grouped by outer label, one colour per inner label, values written on top."""
    inner = list(dict.fromkeys(name for values in groups.values() for name in values))
    width = 0.8 / max(len(inner), 1)
    for i, name in enumerate(inner):
        xs = [g + (i - (len(inner) - 1) / 2) * width for g in range(len(groups))]
        heights = [values.get(name, 0) for values in groups.values()]
        rects = ax.bar(xs, heights, width, label=name, color=PALETTE[i % len(PALETTE)])
        ax.bar_label(rects, labels=[fmt.format(value) for value in heights], fontsize=8)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.margins(y=0.12)


def grouped_bars(groups: Mapping[str, Mapping[str, float]], ylabel: str, title: str,
                 fmt: str = "{:.0f}"):
    """Bars grouped by outer label, one colour per inner label, values written on top."""
    fig, (ax,) = figure(width=8)
    _grouped(ax, groups, fmt)
    ax.set_ylabel(ylabel)
    ax.legend()
    return finish(fig, title)


def grouped_bars_and_totals(groups: Mapping[str, Mapping[str, float]], totals: Mapping[str, float],
                            ylabels: tuple[str, str], titles: tuple[str, str], title: str,
                            fmt: str = "{:.0f}"):
    """Left: grouped bars (as `grouped_bars`); right: one bar per outer label of a quantity in
    another unit, so it never shares an axis with the counts."""
    fig, (left, right) = figure(ncols=2, width=11)
    _grouped(left, groups, fmt)
    left.legend(loc="upper right")
    rects = right.bar(list(totals), list(totals.values()), 0.6, color=PALETTE[5])
    right.bar_label(rects, labels=[fmt.format(v) for v in totals.values()], fontsize=8)
    right.margins(y=0.12)
    for ax, ylabel, name in zip((left, right), ylabels, titles):
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10)
    return finish(fig, title)
