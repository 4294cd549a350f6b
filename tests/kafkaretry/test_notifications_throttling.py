"""Email provider throttling: a throttle answer (421/451/452) is transient and retried until the
email is delivered; a 550 for a mailbox that does not exist is fatal and dead-lettered at once."""

import asyncio

import pytest

from backendlab.topics.kafkaretry import FatalError, TransientError
from backendlab.topics.kafkaretry import experiments as kr
from backendlab.topics.kafkaretry.notifications import EmailHandler, Event, SmtpSink


def send(address: str, event_id: str, to: str = "ana@example.test") -> None:
    host, _, port = address.rpartition(":")
    payload = {"id": event_id, "type": "email", "user": "ana", "to": to, "subject": "s", "body": "b"}
    asyncio.run(EmailHandler(host, int(port), timeout=2).send(Event(event_id, "email", "ana", payload)))


@pytest.mark.parametrize("reply", ["421 4.7.0 Too many messages, slow down",
                                   "451 4.7.1 Rate limited, try again later",
                                   "452 4.5.3 Too many recipients"])
def test_a_throttle_answer_is_transient_and_the_next_attempt_gets_through(reply):
    with SmtpSink(busy_first=2, busy_reply=reply) as sink:
        for _ in range(2):
            with pytest.raises(TransientError, match=f"SMTP answered {reply[:3]}: {reply[4:]}"):
                send(sink.address, "m1")
        send(sink.address, "m1")
        assert [m.id for m in sink.messages] == ["m1"] and sink.refused == 2


def test_an_unknown_mailbox_is_fatal_and_other_mailboxes_still_get_mail():
    with SmtpSink(unknown={"nobody@example.test"}) as sink:
        with pytest.raises(FatalError, match="SMTP answered 550: 5.1.1 Mailbox unavailable"):
            send(sink.address, "m1", to="nobody@example.test")
        send(sink.address, "m2")
        assert [(m.id, m.recipients) for m in sink.messages] == [("m2", ("ana@example.test",))]


def test_the_sink_throttles_only_with_a_4xx_answer():
    with pytest.raises(ValueError, match="busy_reply must be a 4xx SMTP answer"):
        SmtpSink(busy_first=1, busy_reply="550 no")


@pytest.fixture(scope="module")
def result():
    before = set(kr.topics_left())
    run = kr.email_throttling(emails=4, throttled=6, max_attempts=4, base_ms=200)
    assert set(kr.topics_left()) == before
    return run


def test_throttled_emails_are_all_delivered_after_retries_and_only_the_550_is_dead_lettered(result):
    assert result.refused == 6
    assert result.delivered == {f"mail-{n}": 1 for n in range(1, 5)}, result.summary()
    assert sum(result.retries.values()) == 6 and "bounce" not in result.retries, result.retries
    assert max(result.retries.values()) == 2  # some were throttled on their retry too
    assert list(result.dead) == ["bounce"], result.dead
    headers = result.dead["bounce"]
    assert headers["x-retry-error-kind"] == "fatal" and headers["x-retry-attempts"] == "1"
    assert headers["x-retry-error"] == "FatalError: SMTP answered 550: 5.1.1 Mailbox unavailable"


def test_the_throttling_figure_stacks_attempts_per_email(result):
    fig = result.plot()
    assert "only the 550 is dead-lettered" in fig._suptitle.get_text()
    assert fig.axes[0].get_ylabel() == "attempts per email"
    assert len(fig.axes[0].patches) == 3 * 5  # three stacked layers for each of the five emails


def test_a_throttle_no_attempt_could_outlast_is_refused_up_front():
    with pytest.raises(ValueError, match="throttled must be under emails x"):
        kr.email_throttling(emails=2, throttled=4, max_attempts=3)
