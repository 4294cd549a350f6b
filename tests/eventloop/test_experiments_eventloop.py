"""The notebook-01 experiments at small sizes: each starts real servers, shows its effect, and
leaves no process or file behind."""

import psutil
import pytest

from backendlab import processes
from backendlab.topics.eventloop import experiments as ex


@pytest.fixture(autouse=True)
def nothing_left_running():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    managed = processes.running()  # a test that ran earlier in this process may have left its own
    yield
    assert [p for p in processes.running() if p not in managed] == []
    gone = psutil.wait_procs([p for p in psutil.Process().children(recursive=True)
                              if p.pid not in before], timeout=5)
    assert gone[1] == [], "an experiment left a process running"


def test_buffered_parse_stalls_the_loop_and_streaming_does_not():
    result = ex.upload_modes(csv_mb=8, progress=False)
    buffered, streamed = result.runs["buffered"], result.runs["streamed"]
    assert buffered.status == streamed.status == 200
    assert buffered.body["rows"] == streamed.body["rows"] == result.csv.rows
    assert buffered.body["malformed"] == result.csv.malformed > 0
    # Both /health probes ran in this run on this machine, so a busy machine slows both: the ratio
    # holds (about 50x idle, 9x beside the whole test suite), and with no stall it is ~1x.
    assert result.p99_ratio() > 4
    # A count of bytes, not a time: the buffered body is held whole, the streamed one chunk by chunk.
    assert result.memory_ratio() > 5
    assert buffered.start < buffered.end <= buffered.probe.due[-1]
    assert set(result.latency_series()) == set(result.memory_series()) == {"buffered", "streamed"}


def test_to_thread_still_stalls_the_loop_a_process_pool_does_not():
    result = ex.offload(csv_mb=8, parses=2, rounds=1, progress=False)
    thread, process = result.runs["thread"], result.runs["process"]
    assert thread.statuses == process.statuses == [200, 200]
    # The same run's process pool is the baseline: a thread still holds the GIL (about 50x worse at
    # p90 with both cores free, 4x with one busy); a loop that never stalls would give ~1x. The
    # pool keeps the loop free only with a core of its own: beside the whole suite it gave 1.6x at
    # 1.1 free cores and 0.9x at 0.6, so below 1.5 free cores the ratio is not asserted.
    assert result.p90_ratio() > 2 or result.free_cores < 1.5
    assert result.leftover_files == 0
    assert 0 < result.free_cores <= 2.2
    assert thread.throughput > 0 and process.throughput > 0


def test_concurrency_limit_refuses_with_retry_after_and_everyone_finishes():
    result = ex.concurrency_limit(users=6, limit=2, file_mb=2, progress=False)
    assert result.max_in_flight <= 2
    assert result.refused, "six users at once against a limit of two: some must be refused"
    assert all(a.retry_after == "1" and "busy" in a.body["error"] for a in result.refused)
    assert result.succeeded_users == 6
    assert result.leftover_files == 0
    assert {outcome for *_, outcome in result.timeline()} == {"200 OK", "503 + Retry-After"}


def test_job_queue_answers_202_before_the_work_is_done():
    result = ex.job_queue(users=4, file_mb=2, progress=False)
    assert [j.status_code for j in result.jobs] == [202] * 4
    assert all(j.job["status"] == "done" and j.job["rows"] > 0 for j in result.jobs)
    assert max(result.accept_seconds) < max(result.finish_seconds)
    assert result.leftover_files == 0
    assert len(result.timeline()) == 8


def test_scale_out_reaches_every_worker():
    result = ex.scale_out(seconds=0.6, slices=1, clients=3, request_kb=100, progress=False)
    assert len(result.runs[1].pids) == 1
    assert len(result.runs[2].pids) == 2
    assert all(r.completed > 0 and r.errors == 0 for r in result.runs.values())
    assert set(result.throughputs()) == {"1 worker", "2 workers"}


def test_bad_inputs_get_the_right_status_and_leave_nothing_on_disk():
    result = ex.bad_inputs(max_mb=0.5)
    statuses = [status for _, status, _ in result.table()]
    assert statuses == [200, 415, 413, 400, 0]
    assert result.malformed_counted == result.malformed_sent > 0
    assert all('"error"' in c.answer for c in result.cases[1:4])
    assert result.spooled_after_hang_up == 0
    assert result.leftover_files == 0
