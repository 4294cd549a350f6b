"""Experiment 3 of notebook 07: full jitter spreads the retries of messages that failed together;
a retry runs on time whether the loop pauses its partition or sleeps, but only the sleeping loop
stops polling for a whole backoff, and one that sleeps past max.poll.interval.ms is thrown out of
its group: its commit fails and the record is handled again."""

import pytest
from matplotlib.figure import Figure

from backendlab.topics.kafkaretry.experiments import backoff_schedule as experiment
from backendlab.topics.kafkaretry.experiments.common import topics_left
from backendlab.topics.kafkaretry import Backoff
from conftest import kafka_for_tests


def test_without_jitter_every_failure_retries_at_the_same_instants():
    run = experiment.retry_schedule(failures=200, attempts=4)
    assert run.ceilings_ms == [200, 400, 800, 1600]
    assert run.times_ms("no jitter") == [[t] * 200 for t in (200, 600, 1400, 3000)]
    assert run.busiest("no jitter") == 200


@pytest.mark.parametrize("seed", range(20))
def test_full_jitter_spreads_the_retries_below_a_quarter_of_the_spike(seed):
    run = experiment.retry_schedule(failures=200, attempts=4, seed=seed)
    assert run.busiest("full jitter") <= run.busiest("no jitter") / 4
    assert run.within_ceiling


def test_jittered_retry_times_add_up_their_delays():
    run = experiment.retry_schedule(failures=3, attempts=3, seed=1)
    delays = run.delays_ms["full jitter"]
    for failure in range(3):
        assert [times[failure] for times in run.times_ms("full jitter")] == \
            [sum(delays[n][failure] for n in range(k + 1)) for k in range(3)]
    assert sum(run.per_bucket("full jitter").values()) == 9


def test_the_schedule_replays_with_its_seed_whatever_the_backoffs_jitter_flag():
    steady = Backoff(base_ms=100, cap_ms=1000, jitter=False)
    assert experiment.retry_schedule(backoff=steady, seed=3) == \
        experiment.retry_schedule(backoff=Backoff(base_ms=100, cap_ms=1000), seed=3)
    assert experiment.retry_schedule(seed=3) != experiment.retry_schedule(seed=4)


def test_the_schedule_figure_and_summary():
    run = experiment.retry_schedule()
    fig = run.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert run.summary()["no jitter"] == {"busiest 10 ms": 200, "last retry at ms": 3000}


@pytest.fixture(scope="module")
def live():
    with kafka_for_tests():
        result = experiment.due_time_accuracy()
        result.left = topics_left()
        yield result


def half_the_longest_backoff(live) -> float:
    """What tells the loops apart: a sleeping loop's longest poll gap is at least this, a pausing
    loop's and any retry's lateness stay below it (600 ms for the default backoff)."""
    return 0.5 * live.backoff.delay_ms(live.max_attempts - 1)


def test_every_retry_runs_soon_after_its_due_time_in_both_loops(live):
    late_ms = live.poll_ms + 300  # one poll late, plus a loaded machine's scheduling delays
    assert late_ms <= half_the_longest_backoff(live)
    for name in experiment.LOOPS:
        loop = live.loops[name]
        assert [attempt for attempt, _, _ in loop.retries] == [2, 3, 4]
        assert all(-5 <= late < late_ms for late in loop.lateness_ms), loop.lateness_ms
    assert min(live.loops["pause and resume"].lateness_ms) >= 0


def test_only_the_sleeping_loop_stops_polling_for_a_whole_backoff(live):
    half = half_the_longest_backoff(live)
    assert live.loops["sleep in the loop"].longest_poll_gap_ms >= half, live.summary()
    assert live.loops["pause and resume"].longest_poll_gap_ms < half, live.summary()


def test_sleeping_past_max_poll_interval_fails_the_commit_and_redelivers(live):
    overrun = live.overrun
    assert overrun.commit_errors == ["CommitFailedError"]
    assert overrun.revocations >= 1
    assert overrun.redelivered
    assert [(place, offset) for _, place, offset in overrun.deliveries] == \
        [("source", 0), ("retry.1", 0), ("retry.1", 0)]
    assert max(overrun.poll_gaps_ms) >= overrun.sleep_ms * 0.9


def test_the_live_run_is_quick_and_leaves_no_topics(live):
    assert live.seconds < 10  # a hang guard: about 4 s idle, room for a busy core
    assert live.left == []


def test_the_due_time_figure_and_summary(live):
    fig = live.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    summary = live.summary()
    assert summary["sleep past max.poll.interval"]["redelivered"] is True
    assert set(summary) >= set(experiment.LOOPS)
