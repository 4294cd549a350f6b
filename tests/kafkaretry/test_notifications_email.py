"""The email handler against a real SMTP server (the sink): a message arrives once with its id,
a busy server (4xx) or one that is down is transient, a refused recipient (5xx) is fatal."""

import asyncio

import pytest
from aiosmtpd.controller import Controller

from backendlab import processes
from backendlab.topics.kafkaretry import FatalError, TransientError
from backendlab.topics.kafkaretry.notifications import EmailHandler, Event, SmtpSink


def email_event(event_id: str = "m1", to: str = "ana@example.test") -> Event:
    payload = {"id": event_id, "type": "email", "user": "ana", "to": to,
               "subject": f"Subject {event_id}", "body": f"Body of {event_id}."}
    return Event(event_id, "email", "ana", payload)


def handler_for(address: str) -> EmailHandler:
    host, _, port = address.rpartition(":")
    return EmailHandler(host, int(port), timeout=2)


def send(address: str, event: Event) -> None:
    asyncio.run(handler_for(address).send(event))


def test_a_sent_email_arrives_once_with_its_recipient_subject_and_id():
    with SmtpSink() as sink:
        assert sink.address.startswith("127.0.0.1:")
        send(sink.address, email_event("m1"))
        send(sink.address, email_event("m2", to="ben@example.test"))
        first, second = sink.messages
    assert (first.id, first.recipients, first.subject, first.body) == \
        ("m1", ("ana@example.test",), "Subject m1", "Body of m1.")
    assert (second.id, second.recipients) == ("m2", ("ben@example.test",))
    assert first.sender == "notifications@backendlab.test" and first.at_ms <= second.at_ms


def test_a_busy_server_is_transient_and_the_retry_gets_through():
    with SmtpSink(busy_first=1) as sink:
        with pytest.raises(TransientError, match="SMTP answered 451"):
            send(sink.address, email_event())
        send(sink.address, email_event())
        assert [m.id for m in sink.messages] == ["m1"] and sink.refused == 1


def test_a_server_that_is_down_is_transient():
    sink = SmtpSink().start()
    address = sink.address
    sink.stop()
    with pytest.raises(TransientError, match=f"SMTP server {address} unreachable: "
                                             "ConnectionRefusedError"):
        send(address, email_event())


class RefusesRecipients:
    """An SMTP server's answer for a mailbox that does not exist."""

    async def handle_RCPT(self, _server, _session, _envelope, _address, _options):
        return "550 5.1.1 No such mailbox"


def test_a_refused_recipient_is_fatal():
    controller = Controller(RefusesRecipients(), hostname="127.0.0.1",
                            port=processes.free_port())
    controller.start()
    try:
        with pytest.raises(FatalError, match="SMTP answered 550: 5.1.1 No such mailbox"):
            send(f"127.0.0.1:{controller.port}", email_event())
    finally:
        controller.stop()


def test_the_sink_reports_when_it_is_not_running():
    with pytest.raises(RuntimeError, match="the sink is not running"):
        SmtpSink().address
