"""Notebook 01's results draw themselves: hand-built results, no server needed."""

import pytest

from backendlab.datasets import MB, CsvInfo
from backendlab.measure import ProbeResult, RssTrace
from backendlab.topics.eventloop import experiments as ev
from backendlab.topics.eventloop.experiments.concurrency_limit import Attempt
from backendlab.topics.eventloop.experiments.job_queue import Job
from backendlab.topics.eventloop.experiments.offload import OffloadRun
from backendlab.topics.eventloop.experiments.scale_out import ScaleRun
from backendlab.topics.eventloop.experiments.upload_modes import UploadRun


def title(fig) -> str:
    return fig._suptitle.get_text()


def probe(*latency: float) -> ProbeResult:
    return ProbeResult(due=[0.1 * i for i in range(len(latency))], latency=list(latency),
                       status=[200] * len(latency))


@pytest.fixture
def uploads():
    runs = {mode: UploadRun(mode, probe(0.001, slow, 0.001), RssTrace([0, 1], [100 * MB, peak]),
                            0.1, 0.9, 200, {"rows": 10})
            for mode, slow, peak in (("buffered", 0.5, 180 * MB), ("streamed", 0.002, 101 * MB))}
    return ev.UploadComparison(CsvInfo(20 * MB, 10, 0), runs)


def test_the_upload_comparison_draws_latency_and_memory(uploads):
    latency, memory = uploads.plot(), uploads.plot("memory")
    assert title(latency) == "/health p99 during one 20 MB upload: buffered 490 ms, streamed 2 ms (log scale)"
    assert title(memory) == "Server RSS during one 20 MB upload: buffered +80 MB, streamed +1 MB"
    assert [line.get_label() for line in latency.axes[0].get_lines()] == ["buffered", "streamed"]
    assert [line.get_label() for line in memory.axes[0].get_lines()] == ["buffered", "streamed",
                                                                         "file size (20 MB)"]
    assert list(memory.axes[0].get_lines()[0].get_ydata()) == [0, 80 * MB / 1e6]
    assert list(memory.axes[0].get_lines()[-1].get_ydata()) == [20, 20], "the reference: the file"
    with pytest.raises(ValueError):
        uploads.plot("cpu")


def test_the_offload_comparison_draws_latency_beside_throughput():
    runs = {mode: OffloadRun(mode, 4, 5.0, [probe(0.001, 0.002)], [1.0, 2.0], [200] * 8)
            for mode in ("thread", "process")}
    fig = ev.OffloadComparison(runs, 0, 2.0).plot()
    left, right = fig.axes
    assert title(fig) == "A process pool keeps /health 1x faster (p90) than to_thread and parses 1.0x the MB/s"
    assert len(left.get_lines()) == 2 and len(right.patches) == 2
    assert right.get_ylabel() == "MB of CSV parsed per second"


def test_many_users_draws_the_limit_and_the_queue_side_by_side():
    limited = ev.LimitResult(2, 1, [Attempt(0, 0, 1, 200), Attempt(1, 0, 0.01, 503),
                                    Attempt(1, 1.2, 2, 200)], 1, 0)
    queued = ev.QueueResult([Job(0, 0, 0.1, 1, 202, {"status": "done"}, 3)], probe(0.001), 0)
    fig = ev.ManyUsers(limited, queued).plot()
    assert title(fig) == ("Many users at once: the limit refuses 1 uploads with 503 + Retry-After,"
                          "\nthe queue accepts all 1 with 202 within 0.1 s")
    assert [ax.get_title() for ax in fig.axes] == ["2 users, at most 1 uploads at a time",
                                                   "1 users, 202 + job id, then polling"]
    assert [len(ax.patches) for ax in fig.axes] == [3, 2]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["200 OK", "503 + Retry-After"]


def test_the_scale_result_draws_one_bar_per_worker_count():
    fig = ev.ScaleResult({1: ScaleRun(1, 30, 3.0), 2: ScaleRun(2, 57, 3.0)}, 2.0).plot()
    ax = fig.axes[0]
    assert title(fig) == "CPU-bound uploads on 2 cores: 2 uvicorn workers give 1.9x (ideal 2x)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 worker", "2 workers"]
    assert list(ax.get_lines()[0].get_ydata()) == [20, 20], "the ideal: twice one worker's rate"
    assert [t.get_text() for t in ax.texts] == ["10", "19"]
