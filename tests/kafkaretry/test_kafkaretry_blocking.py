"""Experiment 2 of notebook 07: poison messages retried in place hold up every healthy message
behind them; routed to retry topics, they do not. Both modes dead-letter the poison after the same
attempts, and the lag of both drains to zero."""

import asyncio
import json
from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure

from backendlab.topics.kafkaretry.experiments import blocking as experiment
from backendlab.topics.kafkaretry.experiments.common import topics_left
from backendlab.topics.kafkaretry import Backoff, FatalError, RetryPolicy, RetryTopics, decode
from conftest import kafka_for_tests

MODES = experiment.MODES


@pytest.fixture(scope="module")
def run():
    with kafka_for_tests():
        result = experiment.blocking_vs_retry_topics()
        result.left = topics_left()
        yield result


def test_healthy_messages_are_ten_times_faster_with_retry_topics(run):
    backoffs = run.backoff.schedule(run.max_attempts - 1)  # 200, 400, 800 ms: no jitter
    # Behind the first poison, a blocked message waits for all its backoffs, at least for the
    # first one; with retry topics it waits for none (a few ms when idle, ~400 times faster).
    assert run.percentile_ms("blocking", 50) > sum(backoffs) / 2, run.summary()
    assert run.percentile_ms("retry topics", 50) < backoffs[0] * 0.75, run.summary()
    assert run.speedup(50) >= 10, run.summary()


def test_every_healthy_message_is_handled_once_in_both_modes(run):
    healthy = set(run.sent_s) - set(run.poison)
    assert all(set(run.latency_ms[mode]) == healthy for mode in MODES)
    assert len(healthy) == run.healthy == 100


def test_both_modes_dead_letter_the_poison_after_max_attempts(run):
    assert run.dead_attempts == {mode: [4, 4] for mode in MODES}
    for mode in MODES:
        assert [d.n for d in run.dead[mode]] == run.poison == [5, 15]
        assert {d.error_kind for d in run.dead[mode]} == {"transient"}


def test_lag_builds_up_only_in_place_and_drains_in_both(run):
    assert run.final_lag == {mode: 0 for mode in MODES}
    assert run.max_lag["blocking"] >= run.healthy / 2
    assert run.max_lag["retry topics"] * 5 < run.max_lag["blocking"]
    times = [t for t, _ in run.lag["blocking"]]
    assert times == sorted(times) and len(times) > 20


def test_the_run_is_quick_and_leaves_no_topics(run):
    assert run.seconds < 15  # a hang guard: about 4 s idle, room for a busy core
    assert run.left == []


def test_the_figure_has_a_latency_and_a_lag_panel(run):
    fig = run.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [len(line.get_xdata()) for line in fig.axes[0].get_lines()[:2]] == [100, 100]


def test_poison_messages_sit_early_in_the_stream():
    assert experiment.poison_positions(102, 2) == [5, 15]
    assert all(n < 20 for n in experiment.poison_positions(100, 4))


class FakeConsumer:
    def __init__(self):
        self.subscribed = None

    def subscribe(self, names):
        self.subscribed = names


class FakeProducer:
    def __init__(self):
        self.sent = []

    async def send_and_wait(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value, decode(headers)))


def in_place(handler, max_attempts=3):
    policy = RetryPolicy(max_attempts=max_attempts, backoff=Backoff(base_ms=1, cap_ms=5))
    producer = FakeProducer()
    loop = experiment.InPlaceRetries(FakeConsumer(), producer, RetryTopics("orders", 2), policy,
                                     handler)
    return loop, producer


RECORD = SimpleNamespace(topic="orders", partition=0, offset=7, key=b"k", headers=[],
                         value=json.dumps({"n": 7}).encode())


def test_in_place_retries_until_the_handler_passes():
    calls = []

    def flaky(record):
        calls.append(record.offset)
        if len(calls) < 3:
            raise ConnectionError("not yet")

    loop, producer = in_place(flaky)
    asyncio.run(loop.handle(RECORD))
    assert loop.consumer.subscribed == ["orders"]
    assert (calls, producer.sent, loop.dead_lettered) == ([7, 7, 7], [], 0)


def test_in_place_dead_letters_after_max_attempts_with_the_metadata():
    def down(record):
        raise TimeoutError("slow")

    loop, producer = in_place(down)
    asyncio.run(loop.handle(RECORD))
    [(topic, value, meta)] = producer.sent
    assert (topic, value, loop.dead_lettered) == ("orders.dlt", RECORD.value, 1)
    assert (meta.original_topic, meta.original_offset, meta.attempts) == ("orders", 7, 3)
    assert (meta.error_kind, meta.error, meta.due_ms) == ("transient", "TimeoutError: slow", None)
    assert meta.first_seen_ms <= meta.failed_at_ms


def test_in_place_dead_letters_a_fatal_error_at_once():
    calls = []

    def bad(record):
        calls.append(1)
        raise FatalError("no such template")

    loop, producer = in_place(bad)
    asyncio.run(loop.handle(RECORD))
    assert len(calls) == 1 and producer.sent[0][2].error_kind == "fatal"
