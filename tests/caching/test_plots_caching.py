"""Notebook 05's figures draw what they are given: the right marks, labels and scales."""

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
    ax = plots.ratio_lines([0.1, 1, 10], series, "TTL", "t").axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1.05)
    assert [line.get_label() for line in ax.get_lines()] == ["hit", "stale"]


def test_keys_alive_marks_the_ttl():
    ax = plots.keys_alive([0, 0.5, 1], [6, 6, 0], ttl=0.6).axes[0]
    assert "TTL: 0.6 s" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_grouped_bars_write_every_value():
    fig = plots.grouped_bars({"a": {"x": 1, "y": 20}, "b": {"x": 3, "y": 0}}, "count", "t")
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    assert labels == ["0", "1", "20", "3"]


def test_outage_timeline_shades_the_outage_and_colours_outcomes():
    ax = plots.outage_timeline([0, 1, 2], [0.001, 0.03, 0.001], ["hit", "bypass", "hit"], 0.5, 1.5,
                               "t").axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["hit", "bypass", "cache down"]
