"""Transient or fatal: explicit markers win, bad input is fatal, the outside world is transient, and
anything unknown is retried (bounded) rather than dead-lettered on a guess."""

import json

import pytest

from backendlab.topics.kafkaretry import FatalError, Kind, TransientError, classify
from backendlab.topics.kafkaretry.errors import describe


def bad_json() -> Exception:
    try:
        json.loads(b"{not json")
    except ValueError as exc:
        return exc


@pytest.mark.parametrize("exc", [FatalError("unknown event type"), bad_json(), KeyError("email"),
                                 TypeError("expected str"),
                                 UnicodeDecodeError("utf-8", b"\xff", 0, 1, "x")])
def test_bad_input_is_fatal(exc):
    assert classify(exc) is Kind.FATAL


@pytest.mark.parametrize("exc", [TransientError("SES throttled"), TimeoutError(),
                                 ConnectionRefusedError(), ConnectionResetError(),
                                 OSError("network unreachable")])
def test_outside_world_failures_are_transient(exc):
    assert classify(exc) is Kind.TRANSIENT


def test_explicit_markers_beat_the_type_lists():
    class Throttled(TransientError, ValueError):
        pass

    class Corrupt(FatalError, ConnectionError):
        pass

    assert classify(Throttled()) is Kind.TRANSIENT
    assert classify(Corrupt()) is Kind.FATAL


def test_unknown_errors_follow_the_default():
    class Weird(Exception):
        pass

    assert classify(Weird()) is Kind.TRANSIENT
    assert classify(Weird(), default=Kind.FATAL) is Kind.FATAL
    assert classify(RuntimeError("x"), fatal=(RuntimeError,)) is Kind.FATAL


def test_describe_names_the_type_and_is_bounded():
    assert describe(ConnectionError("SES timed out")) == "ConnectionError: SES timed out"
    long = describe(ValueError("x" * 5000), limit=100)
    assert len(long) == 100 and long.startswith("ValueError: xxx")
