"""Notebook 02's results draw themselves: hand-built results, no server or S3 needed."""

from backendlab.topics.uploads import experiments as ex
from backendlab.topics.uploads.experiments.proxied_vs_direct import PathCost
from backendlab.topics.uploads.experiments.storage_modes import ModeRun
from backendlab.topics.uploads.limits import MB


def test_the_storage_comparison_draws_growth_per_mode_against_concurrency():
    runs = {mode: ModeRun(mode, {1: g * MB, 2: 2 * g * MB, 4: 4 * g * MB})
            for mode, g in (("memory", 8), ("spooled", 1), ("stream", 0))}
    fig = ex.StorageComparison(8 * MB, runs, 0).plot()
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == ("4 x 8 MB uploads at once: memory +32 MB (every file whole),\n"
                                        "spooled +4 MB, stream +0 MB")
    assert [line.get_label() for line in ax.get_lines()] == ["memory", "spooled", "stream",
                                                             "file size x uploads"]
    assert list(ax.get_lines()[0].get_ydata()) == [8, 16, 32]
    assert list(ax.get_lines()[-1].get_ydata()) == [8, 16, 32], "the reference: every file whole"
    assert ax.get_xlabel() == "uploads at once"


def test_the_proxy_comparison_draws_one_panel_per_cost():
    costs = {"proxied through the server": PathCost(24 * MB, 0.5, 3 * MB, 1.0, 3),
             "direct to S3 (presigned POST)": PathCost(0, 0.01, 0, 1.2, 3)}
    fig = ex.ProxyComparison(3, 8 * MB, costs, 3).plot()
    assert fig._suptitle.get_text() == ("3 uploads of 8 MB: proxied, the server receives 24 MB; "
                                        "direct to S3, 0 MB")
    assert [ax.get_title() for ax in fig.axes] == ["MB received by the server", "server CPU seconds",
                                                   "server peak RSS growth (MB)"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["24.00", "0.00", "3 x 8 MB"]
    assert [line.get_ydata()[0] for line in fig.axes[0].get_lines()] == [24], "the files' total size"
