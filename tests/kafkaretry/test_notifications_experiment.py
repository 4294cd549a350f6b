"""Experiment 6 of notebook 07 once, with the assertions the notebook makes: every email and every
push arrives exactly once, the late user gets its pushes after connecting, the rest ends in the
DLT with the right headers, retry topics reorder a user's events, and nothing is left behind."""

import time

import psutil
import pytest

from backendlab.topics.kafkaretry.experiments import topics_left
from backendlab.topics.kafkaretry.experiments.notifications import LANES, notification_router
from conftest import kafka_for_tests


@pytest.fixture(scope="module")
def run():
    with kafka_for_tests():
        started = time.monotonic()
        result = notification_router(progress=False)
        result.wall_seconds = time.monotonic() - started
        result.left = topics_left()
        result.servers_left = [p for p in psutil.Process().children(recursive=True)
                               if "notifications" in " ".join(p.cmdline())]
        yield result


def test_every_email_reaches_the_sink_exactly_once(run):
    assert run.email_counts() == {event_id: 1 for event_id in run.sent_ids("email")}
    assert sorted(email.recipients for email in run.emails) == \
        [("ana@example.test",), ("ben@example.test",), ("carol@example.test",)]
    assert run.retries_of("email-1") == 1  # the sink answered the first email "451 busy"


def test_every_push_to_an_online_user_arrives_once(run):
    for user in ("ana", "ben", "dana"):
        assert run.push_counts(user) == {event_id: 1 for event_id in run.sent_ids("push", user)}


def test_the_late_user_gets_its_pushes_after_connecting(run):
    late = run.pushes_to("late")
    assert run.push_counts("late") == {"late-1": 1, "late-2": 1}
    assert min(push.at_ms for push in late) >= run.connected_ms["late"]
    assert all(run.retries_of(event_id) >= 1 for event_id in run.sent_ids("push", "late"))


def test_the_never_connected_user_and_the_bad_events_are_in_the_dlt(run):
    assert run.dead_letters() == {"ghost-1": (3, "transient"), "bad-type": (1, "fatal"),
                                  "bad-json": (1, "fatal")}
    ghost = next(d for d in run.dead if d.id == "ghost-1")
    assert ghost.headers["x-retry-error"].startswith("TransientError: user offline: ghost")
    assert run.retries_of("ghost-1") == 2 and run.retries_of("bad-type") == 0
    assert run.sent_ids("push", "ghost") == ["ghost-1"] and not run.pushes_to("ghost")


def test_retry_topics_deliver_a_users_events_out_of_order(run):
    assert [push.id for push in run.pushes_to("dana")] == ["dana-2", "dana-3", "dana-1"]
    assert run.out_of_order("dana") == 1
    assert run.out_of_order("ana") == run.out_of_order("ben") == run.out_of_order("late") == 0


def test_the_service_counted_the_same(run):
    assert run.stats["handled"] == {"email": 3, "push": len(run.pushes)}
    assert run.stats["retried"] == sum(not f.dead for f in run.failures)
    assert run.stats["dead_lettered"] == 3


def test_it_fits_the_budget_and_leaves_nothing_behind(run):
    # A hang guard: about 4 s idle, so a busy core fits and a stuck retry (minutes) does not.
    assert run.wall_seconds < 15, run.wall_seconds
    assert run.left == [] and run.servers_left == []


def test_the_timeline_has_a_lane_per_channel_and_user(run):
    fig = run.plot()
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert labels == list(reversed(LANES))


@pytest.mark.parametrize("options, message", [
    (dict(max_attempts=1), "max_attempts must be at least 2"),
    (dict(base_ms=200, late_after=1.0), "late_after must be under 0.6 s"),
])
def test_settings_that_cannot_show_the_effect_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        notification_router(progress=False, **options)
