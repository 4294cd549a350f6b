"""The metadata a retried or dead-lettered message carries with it, as Kafka headers.

A message copied to `orders.retry.2` or `orders.dlt` is a new record at a new offset; without these
headers nobody could tell where it came from, how often it failed, or why. Every value is UTF-8
text (integers in decimal), so the headers read well in any Kafka tool:

    x-retry-original-topic      orders
    x-retry-original-partition  0
    x-retry-original-offset     41
    x-retry-attempts            3          attempts made so far (all failed)
    x-retry-error               ConnectionError: SES timed out
    x-retry-error-kind          transient | fatal
    x-retry-first-seen-ms       1700000000000   when the first attempt failed (epoch ms)
    x-retry-failed-at-ms        1700000004200   when the latest attempt failed
    x-retry-due-ms              1700000005000   earliest time for the next attempt (retry topics)

The message's own headers are kept (a null value stays null); only the `x-retry-` ones are
replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "x-retry-"
_INT_FIELDS = ("original_partition", "original_offset", "attempts", "first_seen_ms", "failed_at_ms")
_TEXT_FIELDS = ("original_topic", "error", "error_kind")


def header_name(field: str) -> str:
    """`first_seen_ms` -> `x-retry-first-seen-ms`."""
    return PREFIX + field.replace("_", "-")


@dataclass(frozen=True)
class RetryMetadata:
    original_topic: str
    original_partition: int
    original_offset: int
    attempts: int
    error: str
    error_kind: str
    first_seen_ms: int
    failed_at_ms: int
    due_ms: int | None = None


def encode(meta: RetryMetadata) -> list[tuple[str, bytes]]:
    """The `x-retry-*` headers for `meta` (due time only when set)."""
    headers = [(header_name(f), getattr(meta, f).encode()) for f in _TEXT_FIELDS]
    headers += [(header_name(f), str(getattr(meta, f)).encode()) for f in _INT_FIELDS]
    if meta.due_ms is not None:
        headers.append((header_name("due_ms"), str(meta.due_ms).encode()))
    return headers


def decode(headers) -> RetryMetadata | None:
    """The metadata in a record's headers; None for a message that never failed.

    Raises ValueError naming the header when the retry headers are incomplete or malformed.
    """
    found = {name: value for name, value in (headers or ()) if name.startswith(PREFIX)}
    if not found:
        return None
    values: dict = {}
    for field in _TEXT_FIELDS + _INT_FIELDS + ("due_ms",):
        name = header_name(field)
        raw = found.get(name)
        if raw is None:
            if field == "due_ms":
                values[field] = None
                continue
            raise ValueError(f"retry header {name} is missing")
        try:
            text = bytes(raw).decode()
            values[field] = text if field in _TEXT_FIELDS else int(text)
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"retry header {name} is malformed: {bytes(raw)[:40]!r}") from None
    return RetryMetadata(**values)


def own_headers(headers, *prefixes: str) -> list[tuple[str, bytes | None]]:
    """The headers whose names start with none of `prefixes`. A null value (Kafka allows one)
    stays None, so a copy carries the header exactly as the record did."""
    return [(name, None if value is None else bytes(value)) for name, value in (headers or ())
            if not name.startswith(prefixes)]


def with_metadata(headers, meta: RetryMetadata) -> list[tuple[str, bytes | None]]:
    """The record's own headers (minus any old `x-retry-*`), then the new metadata."""
    return own_headers(headers, PREFIX) + encode(meta)
