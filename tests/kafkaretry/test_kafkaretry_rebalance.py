"""Experiment 3 of notebook 07: consumers of one group join a 4-partition topic one at a time, then
one leaves. After each change every partition has exactly one owner, the consumer beyond the
partition count idles, every message is handled, and each change pauses consumption."""

import time
from types import SimpleNamespace

import pytest

from backendlab.topics.kafkaretry.experiments.common import topics_left
from backendlab.topics.kafkaretry.experiments.rebalance import (Ownership, Rebalance, RebalanceRun,
                                                                longest_gap, measure_pauses, rebalance)
from conftest import kafka_for_tests

CHANGES = ["consumer-1 joins", "consumer-2 joins", "consumer-3 joins", "consumer-4 joins",
           "consumer-5 joins", "consumer-1 leaves"]


@pytest.fixture(scope="module")
def run():
    with kafka_for_tests():
        started = time.perf_counter()
        result = rebalance(partitions=4)
        result.wall_seconds = time.perf_counter() - started
        result.left = topics_left()
        yield result


def test_each_change_settles_with_one_owner_per_partition(run):
    assert [r.change for r in run.rebalances] == CHANGES
    for change in run.rebalances:
        assert change.one_owner_each(run.partitions), (change.change, change.owners)


def test_partitions_spread_evenly_over_the_members(run):
    shares = {}
    for n, change in enumerate(CHANGES[:4], start=1):
        owners = run.after(change).owners
        shares[n] = sorted((sum(names == [f"consumer-{m}"] for names in owners.values())
                            for m in range(1, n + 1)), reverse=True)
    assert shares == {1: [4], 2: [2, 2], 3: [2, 1, 1], 4: [1, 1, 1, 1]}


def test_the_consumer_beyond_the_partition_count_idles_until_one_leaves(run):
    assert run.after("consumer-5 joins").idle == ["consumer-5"]
    after_leave = run.after("consumer-1 leaves")
    assert after_leave.idle == [] and ["consumer-5"] in after_leave.owners.values()
    assert "consumer-1" not in str(after_leave.owners)


def test_every_message_is_handled_at_least_once(run):
    assert len(run.produced) > 1000
    assert run.missing == set()
    assert run.duplicates < len(run.produced) / 10, run.summary()  # redelivered after rebalances


def test_each_rebalance_pauses_consumption(run):
    # Steady flow: 200 messages/s, so a gap of 0.1 s (0.25 s on one partition) is no accident.
    # About 1 s (1.5-2 s) on Tansu; real Kafka completes a join once every member rejoined.
    for change in run.rebalances[1:]:
        assert 0.1 < change.pause < 5, change
        assert 0.25 < change.stall and change.stall >= change.pause, change
        assert change.seconds < 8, change  # a hang guard: 1-2 s each idle, 4x room for a busy core


def test_throughput_and_ownership_series(run):
    series = run.throughput()
    assert set(series) == set(run.consumers)
    assert sum(map(sum, series.values())) == sum(len(rows) for rows in run.handled.values())
    spans = run.ownership()
    assert {p for p, _, _, _ in spans} == set(range(run.partitions))
    assert all(start <= end for _, _, start, end in spans)
    assert "consumer-5" not in {c for _, c, start, _ in spans
                                if start < run.after("consumer-1 leaves").started}


def test_summary_and_figure(run):
    summary = run.summary()
    assert summary["missing"] == 0 and len(summary["rebalances"]) == 6
    fig = run.plot()
    assert len(fig.axes) == 2


def test_budget_and_cleanup(run):
    # A hang guard, not an effect: the six changes take about 13 s idle; 30 s leaves room for a
    # busy core while a stuck rebalance (minutes) still fails.
    assert run.wall_seconds < 30, run.summary()
    assert run.left == []


def test_longest_gap():
    assert longest_gap([1.0, 1.2, 2.5, 2.6], 0.9, 3.0) == pytest.approx(1.3)
    assert longest_gap([], 0.0, 2.0) == 2.0
    assert longest_gap([5.0], 0.0, 2.0) == 2.0


def test_measure_pauses_from_handle_times():
    change = Rebalance("consumer-2 joins", started=1.0, settled=2.0)
    handled = {"consumer-1": [(0.9, 0, 1), (1.1, 1, 1), (1.2, 0, 2), (2.05, 1, 2), (2.1, 0, 3)]}
    run = SimpleNamespace(rebalances=[change], handled=handled, ended=3.0, partitions=2)
    measure_pauses(run)
    assert change.pause == pytest.approx(0.85)
    assert change.stall == pytest.approx(0.95)


def test_ownership_spans_from_listener_events():
    events = [Ownership(1.0, "a", "assigned", (0, 1)),
              Ownership(2.0, "a", "revoked", (0, 1)),
              Ownership(3.0, "a", "assigned", (0,)),
              Ownership(3.1, "b", "assigned", (1,))]
    run = RebalanceRun(2, ["a", "b"], 10, 0.5, events, [], set(), {}, 0, ended=4.0)
    assert run.ownership() == [(0, "a", 1.0, 2.0), (0, "a", 3.0, 4.0), (1, "a", 1.0, 2.0),
                               (1, "b", 3.1, 4.0)]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 1 partition and 2 consumers"):
        rebalance(partitions=0)
    with pytest.raises(ValueError, match="got 4 and 1"):
        rebalance(partitions=4, consumers=1)
