"""Experiment 1 of notebook 07 on the test broker: a handler that raises is Kafka's problem only if
the consumer makes it one. Swallowed, the poison record is lost behind a healthy lag of 0; let
crash, the restarted consumer gets the same record forever and the partition is stuck."""

import json
import time

import pytest

from backendlab.topics.kafkaretry.experiments import topics_left
from backendlab.topics.kafkaretry.experiments.handler_errors import (OUTCOMES, handler_errors, outcome,
                                                                     payloads)
from conftest import kafka_for_tests


@pytest.fixture(scope="module")
def broker():
    with kafka_for_tests() as address:
        yield address


@pytest.fixture(scope="module")
def run(broker):
    began = time.perf_counter()
    result = handler_errors(messages=20, poison=(5,), restarts=3)
    return result, time.perf_counter() - began


def test_swallowing_the_error_loses_the_poison_record_and_looks_healthy(run):
    result, _ = run
    swallow = result.swallow
    assert swallow.lost == {5}
    assert swallow.offsets("handled") == set(range(20)) - {5}
    assert (swallow.committed, swallow.log_end, swallow.lag) == (20, 20, 0)
    assert swallow.deliveries(5) == 1 and swallow.consumer_runs == 1
    assert len(swallow.log) == 1 and swallow.log[0].startswith("offset 5: JSONDecodeError")


def test_letting_it_crash_redelivers_the_poison_record_on_every_restart(run):
    result, _ = run
    crash = result.crash
    assert crash.committed == result.first_poison == 5
    assert crash.deliveries(5) == result.restarts + 1 == crash.consumer_runs
    assert crash.offsets("handled") == set(range(5))
    assert crash.offsets("stuck") == {5}
    assert crash.offsets("never reached") == set(range(6, 20))
    assert crash.lost == set() and crash.lag == 20 - 5 == crash.log_end - crash.committed
    assert crash.handled == list(range(5)), "records before the poison are handled once each"


def test_the_summary_and_the_figure(run):
    result, _ = run
    summary = result.summary()
    assert summary["swallow"]["lost"] == 1 and summary["swallow"]["lag"] == 0
    assert summary["crash"]["poison deliveries"] == 4 and summary["crash"]["lag"] == 15
    fig = result.plot()
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["swallow", "crash"]
    assert [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()] == list(OUTCOMES)


def test_it_is_quick_and_leaves_no_topic(run):
    _, seconds = run
    assert seconds < 15, f"took {seconds:.1f} s (budget ~5 s on an idle machine)"
    assert topics_left() == []


def test_with_two_poison_records_the_second_is_never_reached_by_the_crashing_consumer(broker):
    result = handler_errors(messages=10, poison=(7, 3), restarts=1)
    assert result.poison == (3, 7)
    assert result.swallow.lost == {3, 7} and result.swallow.lag == 0
    assert result.crash.committed == 3 and result.crash.deliveries(3) == 2
    assert result.crash.deliveries(7) == 0 and result.crash.outcomes[7] == "never reached"


def test_outcome_of_a_record():
    handled, delivered = {0, 1, 3}, {0, 1, 2, 3, 4}
    assert [outcome(o, handled, delivered, committed=4) for o in range(6)] == \
        ["handled", "handled", "lost", "handled", "stuck", "never reached"]


def test_only_the_poison_payloads_fail_to_parse():
    parsed = []
    for value in payloads(6, (2, 4)):
        try:
            parsed.append(json.loads(value)["order"])
        except ValueError:
            parsed.append(None)
    assert parsed == [0, 1, None, 3, None, 5]


@pytest.mark.parametrize("arguments", [dict(poison=()), dict(poison=(20,)), dict(poison=(-1,)),
                                       dict(restarts=-1)])
def test_bad_arguments_are_refused_before_any_work(arguments):
    with pytest.raises(ValueError):
        handler_errors(**{"messages": 20, "poison": (5,), **arguments})
