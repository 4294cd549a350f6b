"""Experiment 4 of notebook 07: fatal messages are dead-lettered after one attempt, transient ones
after every retry topic; the DLT headers point at the original offsets; after the downstream is
fixed, a paced replay brings the transient ones home and the fatal ones go back to the DLT."""

import json
import time

import pytest

from backendlab.topics.kafkaretry.experiments.common import topics_left
from backendlab.topics.kafkaretry.experiments.dead_letters import (Mailer, dead_letters, dlt_row,
                                                                   handler, mix, text_table)
from backendlab.topics.kafkaretry import Kind, RetryMetadata, classify, encode
from conftest import kafka_for_tests

RATE = 20.0


@pytest.fixture(scope="module")
def run():
    with kafka_for_tests():
        started = time.perf_counter()
        result = dead_letters(rate_per_s=RATE)
        result.wall_seconds = time.perf_counter() - started
        result.left = topics_left()
        yield result


def test_fatal_messages_are_dead_lettered_after_one_attempt(run):
    rows = run.rows("fatal")
    assert len(rows) == len(run.of("fatal")) == 3
    assert all(r["attempts"] == 1 and r["error_kind"] == "fatal" for r in rows)
    assert {r["error"].split(":")[0] for r in rows} == {"JSONDecodeError", "KeyError", "FatalError"}
    assert all(m.path == [run.topics.source] and m.before == "dlt fatal" for m in run.of("fatal"))


def test_transient_messages_pass_every_retry_topic_before_the_dlt(run):
    rows = run.rows("transient")
    assert len(rows) == len(run.of("transient")) == 4
    assert all(r["attempts"] == run.max_attempts and r["error_kind"] == "transient" for r in rows)
    assert {r["error"].split(":")[0] for r in rows} == {"ConnectionError", "TimeoutError"}
    retries = [run.topics.retry(n) for n in range(1, run.max_attempts)]
    assert all(m.path == [run.topics.source, *retries] for m in run.of("transient"))
    assert all(r["first_seen_ms"] < r["failed_at_ms"] for r in rows)


def test_dlt_headers_carry_the_original_offsets(run):
    assert len(run.dead_letters) == 7
    for row in run.dead_letters:
        assert (row["original_topic"], row["original_partition"], row["original_offset"]) == \
            (run.topics.source, 0, run.offsets[row["key"]])
        assert row["replayed_from"] is None


def test_healthy_messages_are_handled_once_and_never_replayed(run):
    assert all(m.path == [run.topics.source] and (m.before, m.after) == ("handled", None)
               for m in run.of("healthy"))


def test_the_replay_is_paced(run):
    assert len(run.replay.moved) == 7
    assert run.replay.measured_rate() <= RATE * 1.1
    assert run.replay.busiest_second() <= RATE + 1
    assert run.replay.send_times[-1] >= 6 / RATE * 0.95


def test_the_copies_land_in_the_source_at_the_paced_rate(run):
    """Measured from the broker's record timestamps, apart from the replay's own clock."""
    assert len(run.landed_s) == 7
    assert run.landed_rate() <= RATE * 1.1 and run.landed_busiest_second() <= RATE + 1
    assert run.landed_s[-1] >= 6 / RATE * 0.9


def test_after_the_replay_transient_ones_are_handled_and_fatal_ones_are_back(run):
    assert all(m.after == "handled" for m in run.of("transient"))
    assert all(m.after == "dlt fatal" for m in run.of("fatal"))
    again = run.rows("fatal", again=True)
    assert len(again) == len(run.dead_again) == 3
    assert all(r["attempts"] == 1 and r["replayed_from"].startswith(run.topics.dlt + ":0:")
               for r in again)
    assert run.counts(after=True) == {"handled": 10, "dlt fatal": 3, "dlt exhausted": 0}


def test_summary_table_and_figure(run):
    summary = run.summary()
    assert summary["before replay"] == {"handled": 6, "dlt fatal": 3, "dlt exhausted": 4}
    lines = run.table().splitlines()
    assert lines[0].split()[:5] == ["key", "original_topic", "original_partition",
                                    "original_offset", "attempts"]
    assert len(lines) == 8 and "+" in lines[1]
    fig = run.plot()
    assert len(fig.axes) == 2


def test_fits_its_budget_and_leaves_no_topics(run):
    # A hang guard: about 2 s idle, so a busy core fits and a stuck consumer does not.
    assert run.wall_seconds < 10, run.summary()["seconds"]
    assert run.left == []


def test_mix_interleaves_the_requested_counts():
    events = mix(6, 4, 3)
    assert [kind for _, kind, _ in events].count("fatal") == 3
    assert [key for key, _, _ in events] == [f"m{n:02d}" for n in range(13)]
    assert len({kind for _, kind, _ in events[:6]}) > 1


def test_handler_failures_classify_as_the_experiment_says():
    mailer, inbox = Mailer(), []
    handle = handler(mailer, inbox)

    def kind_of(value):
        try:
            handle(type("Record", (), {"value": value})())
        except Exception as exc:
            return classify(exc)
        return "handled"

    kinds = [kind for _, kind, _ in mix(2, 2, 3)]
    values = [value for _, _, value in mix(2, 2, 3)]
    expected = {"healthy": "handled", "transient": Kind.TRANSIENT, "fatal": Kind.FATAL}
    assert [kind_of(v) for v in values] == [expected[k] for k in kinds]
    mailer.up = True
    assert kind_of(json.dumps({"id": "e", "type": "email", "user": "u"}).encode()) == "handled"
    assert mailer.sent == ["e"]


def test_text_table_aligns_columns_and_shows_relative_times():
    rows = [{"key": "m1", "first_seen_ms": 1_250, "error": None},
            {"key": "m10", "first_seen_ms": 1_000, "error": "KeyError: 'user'"}]
    table = text_table(rows, ("key", "first_seen_ms", "error"), started_ms=1_000)
    assert table.splitlines() == ["key  first_seen_ms  error",
                                  "m1   +250           -",
                                  "m10  +0             KeyError: 'user'"]


def test_dlt_row_reads_the_headers():
    meta = RetryMetadata("orders", 0, 41, 3, "TimeoutError: slow", "transient", 5, 9)
    record = type("Record", (), {"key": b"m41", "headers": [("x-replayed-from", b"o.dlt:0:2"),
                                                            *encode(meta)]})()
    row = dlt_row(record)
    assert (row["original_offset"], row["attempts"], row["replayed_from"]) == (41, 3, "o.dlt:0:2")
