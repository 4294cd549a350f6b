"""The durable job queue (RQ on the real Redis; notebook 01 runs it embedded) at a small size: a
killed worker loses no job, retries bring flaky jobs through, the poison job ends in the failed
registry, while the in-memory queue loses what it had not finished; nothing is left behind."""

import psutil
import pytest

from backendlab import processes
from backendlab.services.redis import redis_client
from backendlab.topics.eventloop import experiments as ex
from backendlab.topics.eventloop.experiments.durable_queue import RETRY


@pytest.fixture(scope="module")
def result(experiment_redis):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    managed = processes.running()
    run = ex.durable_queue(jobs=8, file_mb=0.5, kill_after=3)
    assert [p for p in processes.running() if p not in managed] == []
    gone = psutil.wait_procs([p for p in psutil.Process().children(recursive=True)
                              if p.pid not in before], timeout=5)
    assert gone[1] == [], "the experiment left a process running"
    return run


def test_a_killed_worker_loses_no_job_in_redis(result):
    durable = result.durable
    assert durable.in_flight_at_kill >= 1, "the worker was killed with a job in flight"
    assert durable.finished_before_kill < durable.jobs
    assert (durable.finished, durable.failed, durable.lost) == (durable.jobs - 1, 1, 0)


def test_flaky_jobs_succeed_on_a_retry_and_the_poison_job_uses_every_attempt(result):
    assert len(result.flaky) == 2
    assert all(result.attempts[job] >= 2 for job in result.flaky)
    [poison] = result.failed_reasons
    assert result.attempts[poison] == RETRY["max"] + 1
    assert "not UTF-8" in result.failed_reasons[poison]


def test_the_in_memory_queue_loses_what_it_had_not_finished(result):
    memory = result.memory
    assert memory.lost == memory.jobs - memory.finished_before_kill > 0
    assert result.memory.lost > result.durable.lost


def test_no_key_or_file_is_left(result):
    assert result.leftover_keys == result.leftover_files == 0
    assert not any("blrq" in key for key in redis_client().scan_iter(match="rq:*blrq*"))


def test_summary_and_plot(result):
    summary = result.summary()
    assert summary["rq_lost"] == 0 and summary["memory_lost"] > 0
    fig = result.plot()
    assert "lost 0 jobs" in fig._suptitle.get_text()
    assert fig.axes[0].get_xlabel() == "jobs"
