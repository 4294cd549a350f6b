"""The notebook-06 experiments, small, on the real Redis (the notebook runs them embedded): each
shows its effect, and leaves no key, process or temp file behind."""

import tempfile

import psutil
import pytest

from backendlab import processes
from backendlab.topics.ratelimit import experiments as rl


@pytest.fixture(autouse=True)
def nothing_left_behind(tmp_path, monkeypatch):
    # The experiments' temp folders go to this test's own folder: notebook 06, running on another
    # worker, makes and removes its own in the shared temp folder meanwhile.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    managed = processes.running()
    yield
    # The suite's Redis may stay up for the module (its fixture stops it); a test
    # that ran earlier in this process may have left its own services up.
    left = [p for p in processes.running() if p not in managed and p.name != "redis"]
    assert left == [], "an experiment left a managed process running"
    spawned = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert psutil.wait_procs(spawned, timeout=5)[1] == [], "an experiment left a process running"
    assert list(tmp_path.glob("backendlab-locust-*")) == []


@pytest.fixture
def no_keys_left(experiment_redis):
    yield
    assert rl.keys_left() == 0


def test_the_fixed_window_lets_twice_the_limit_through_at_its_edge(experiment_redis, no_keys_left):
    run = rl.algorithms(points=5, duration=0.5)
    assert run.stores_agree
    assert run.busiest_window("fixed_window") == 10
    assert run.busiest_window("sliding_log") == 5
    assert 5 < run.busiest_window("sliding_counter") < 10
    assert run.busiest_window("token_bucket") > 5  # the bucket plus what refills meanwhile
    times, totals = run.series()["sliding_log"]
    assert times[0] == 0 and totals[-1] == sum(run.admitted["sliding_log"])


def test_memory_limits_over_admit_across_workers_and_redis_does_not(experiment_redis, no_keys_left):
    run = rl.across_instances(instances=2, points=15, users=4, rate=20, max_requests=30,
                              progress=False)
    assert run.workers_seen == {"memory": 2, "redis": 2}
    assert run.other_errors == {"memory": 0, "redis": 0}
    assert run.admitted["redis"] == 15 and run.refused["redis"] == 45
    assert run.admitted["memory"] > 15
    assert run.admitted["memory"] + run.refused["memory"] == 60
    times, admitted = run.history["memory"]
    assert times[0] == 0 and admitted == sorted(admitted) and admitted[-1] == run.admitted["memory"]


def test_get_then_incr_races_and_the_script_does_not(experiment_redis, no_keys_left):
    run = rl.races(limit=50, requests=250, threads=20, churn_seconds=0.6)
    assert run.over_admitted("Lua script") == 0
    assert run.over_admitted("GET then INCR") > 0
    assert run.keys_without_ttl == {"GET then INCR": run.keys_without_ttl["GET then INCR"],
                                    "Lua script": 0}
    assert run.keys_without_ttl["GET then INCR"] > 0


def test_a_client_that_honours_retry_after_is_rarely_refused(experiment_redis, no_keys_left):
    run = rl.retry_after(points=3, duration=0.5, wanted=5)
    assert run.count("polite", 200) == run.count("hammering", 200) == 5
    assert set(run.first_429) == {"retry-after", "ratelimit-limit", "ratelimit-remaining",
                                  "ratelimit-reset"}
    assert run.count("polite", 429) <= 2
    assert run.count("hammering", 429) > 10 * run.count("polite", 429)
    assert run.successes("hammering")[1] == [1, 2, 3, 4, 5]


def test_a_block_holds_past_the_window(experiment_redis, no_keys_left):
    run = rl.block_duration(points=2, duration=0.2, block=1.5)
    assert run.statuses == [200, 200, 429, 429, 200]
    assert run.attempts[2][2] == "2" and run.attempts[3][0] > run.duration


def test_each_failure_policy_when_redis_stops(experiment_redis):
    run = rl.redis_down(points=3, duration=1.0, seconds=0.6, interval=0.05, progress=False)
    before = {policy: run.counts(policy, after=False) for policy in run.results}
    after = {policy: run.counts(policy, after=True) for policy in run.results}
    assert all(counts.get(200) == 3 and counts.get(429, 0) > 0 for counts in before.values())
    assert set(after["open"]) == {200} and set(after["closed"]) == {503}
    assert 0 < after["insurance"][200] <= 4 and after["insurance"][429] > 0
    assert list(run.series()) == ["open", "closed", "insurance"]


def test_whom_to_count_behind_a_proxy_and_by_api_key():
    run = rl.client_keys(points=2, attacker_requests=6, honest_requests=2)
    assert run.admitted == {
        "socket peer": {"attacker": 2, "honest user": 0},
        "X-Forwarded-For, first entry": {"attacker": 6, "honest user": 2},
        "X-Forwarded-For, trusted proxy only": {"attacker": 2, "honest user": 2}}
    assert run.plans == {"free key A": 2, "free key B": 2, "pro key": 8}
    assert [status for _, status, _ in run.bad_input] == [401, 400, 403]
