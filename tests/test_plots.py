"""The kit's figures draw what they are given: the right marks, labels and scales, in any topic."""

import ast
from pathlib import Path

from matplotlib.figure import Figure

from backendlab import plots


def test_latency_strip_marks_each_median_in_ms():
    fig = plots.latency_strip({"miss": [0.05, 0.06, 0.07], "hit": [0.001, 0.002, 0.003]}, "t")
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["miss", "hit"]
    assert [t.get_text() for t in ax.texts] == ["median 60.0 ms", "median 2.0 ms"]


def test_ratio_lines_keeps_ratios_on_a_zero_to_one_axis():
    series = {"hit": [0.5, 0.8, 0.9], "stale": [0, 0.3, 0.7]}
    ax = plots.ratio_lines([0.1, 1, 10], series, "TTL", "share", "t").axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1.05)
    assert ax.get_ylabel() == "share"
    assert [line.get_label() for line in ax.get_lines()] == ["hit", "stale"]


def test_grouped_bars_write_every_value():
    fig = plots.grouped_bars({"a": {"x": 1, "y": 20}, "b": {"x": 3, "y": 0}}, "count", "t")
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    assert labels == ["0", "1", "20", "3"]


def test_bars_and_bar_panels_write_each_value_on_its_bar():
    ax = plots.bars({"x": 1.0, "y": 2.0}, "u", "t").axes[0]
    assert [t.get_text() for t in ax.texts] == ["1", "2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y"]
    fig = plots.bar_panels({"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 4}}, "t")
    assert [[t.get_text() for t in ax.texts] for ax in fig.axes] == [["1.00", "2.00"], ["3.00", "4.00"]]
    assert fig.axes[0].get_legend_handles_labels()[1] == ["x", "y"]


def test_bars_lines_and_bar_panels_draw_the_reference_they_are_given():
    ax = plots.bars({"x": 1.0, "y": 2.0}, "u", "t", reference=(2.0, "ideal")).axes[0]
    assert [(line.get_label(), list(line.get_ydata())) for line in ax.get_lines()] == [("ideal", [2, 2])]
    ax = plots.lines([1, 2], {"a": [1, 2]}, "n", "MB", "t", reference=([3, 6], "limit")).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "limit"]
    fig = plots.bar_panels({"a": {"x": 1}, "b": {"x": 2}}, "t", references={"b": (5, "cap")})
    assert [len(ax.get_lines()) for ax in fig.axes] == [0, 1] and fig.axes[1].texts[-1].get_text() == "cap"


def test_latency_with_bars_draws_latency_in_ms_beside_the_bars():
    fig = plots.latency_with_bars({"a": ([0, 1], [0.01, 0.02])}, {"a": 3.0}, "MB/s", "t")
    left, right = fig.axes
    assert list(left.get_lines()[0].get_ydata()) == [10, 20] and left.get_yscale() == "log"
    assert right.get_ylabel() == "MB/s" and [t.get_text() for t in right.texts] == ["3"]


def test_request_timeline_colours_outcomes_it_is_given_and_greys_the_rest():
    fig = plots.request_timeline({"p": [(0, 0, 1, "ok"), (1, 0, 0.001, "other")]}, "t",
                                 colors={"ok": plots.PALETTE[1]})
    ok, other = fig.axes[0].patches
    assert ok.get_width() == 1 and other.get_width() == 0.02, "a quick answer stays visible"
    assert other.get_facecolor() != ok.get_facecolor()


def test_the_kit_imports_no_topic():
    tree = ast.parse(Path(plots.__file__).read_text())
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.startswith("backendlab.topics")]
