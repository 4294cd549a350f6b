"""Retry metadata headers: every field survives encode/decode as readable text, the record's own
headers are kept, and incomplete or malformed metadata is refused by name."""

import pytest

from backendlab.topics.kafkaretry import RetryMetadata, decode, encode, with_metadata

META = RetryMetadata(original_topic="orders", original_partition=2, original_offset=41, attempts=3,
                     error="ConnectionError: SES timed out", error_kind="transient",
                     first_seen_ms=1_700_000_000_000, failed_at_ms=1_700_000_004_200,
                     due_ms=1_700_000_005_000)


def test_round_trip_keeps_every_field():
    assert decode(encode(META)) == META
    no_due = RetryMetadata(**{**META.__dict__, "due_ms": None})
    assert decode(encode(no_due)) == no_due
    assert "x-retry-due-ms" not in dict(encode(no_due))


def test_headers_are_plain_text_under_their_documented_names():
    assert dict(encode(META)) == {
        "x-retry-original-topic": b"orders", "x-retry-original-partition": b"2",
        "x-retry-original-offset": b"41", "x-retry-attempts": b"3",
        "x-retry-error": b"ConnectionError: SES timed out", "x-retry-error-kind": b"transient",
        "x-retry-first-seen-ms": b"1700000000000", "x-retry-failed-at-ms": b"1700000004200",
        "x-retry-due-ms": b"1700000005000",
    }


def test_unicode_errors_survive():
    meta = RetryMetadata(**{**META.__dict__, "error": "ValueError: prénom manquant ✉"})
    assert decode(encode(meta)).error == "ValueError: prénom manquant ✉"


def test_a_message_that_never_failed_has_no_metadata():
    assert decode(None) is None
    assert decode([("trace-id", b"abc")]) is None


def test_own_headers_are_kept_and_old_metadata_replaced():
    older = RetryMetadata(**{**META.__dict__, "attempts": 1})
    record_headers = (("trace-id", b"abc"), *encode(older))
    merged = with_metadata(record_headers, META)
    assert merged[0] == ("trace-id", b"abc")
    assert decode(merged) == META
    assert len(merged) == 1 + len(encode(META))


def test_missing_header_is_named():
    headers = [h for h in encode(META) if h[0] != "x-retry-attempts"]
    with pytest.raises(ValueError, match="x-retry-attempts is missing"):
        decode(headers)


def test_malformed_number_is_named():
    headers = [(n, b"three" if n == "x-retry-attempts" else v) for n, v in encode(META)]
    with pytest.raises(ValueError, match="x-retry-attempts is malformed"):
        decode(headers)


def test_a_null_header_value_is_kept_as_null():
    headers = with_metadata([("trace-id", None), ("tenant", b"t1")], META)
    assert headers[:2] == [("trace-id", None), ("tenant", b"t1")]
    assert decode(headers) == META
