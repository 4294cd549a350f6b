"""Deterministic CSV data for the experiments: same size and seed, same bytes, every run.

Rows look like an export of orders (`id,customer,email,country,amount,note`). Some notes are quoted
and hold a comma or a line break, so a parser that splits on commas or newlines gets them wrong.
With `malformed_every=k`, every k-th data row has a missing or an extra field; the generator counts
them so an experiment can check what a server reports.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 1_000_000
HEADER = "id,customer,email,country,amount,note\n"
COLUMNS = HEADER.strip().split(",")
_COUNTRIES = ["DE", "FR", "IN", "US", "BR", "JP", "NG", "PL", "SE", "ES"]
_NOTES = ["", "", "", "gift", "express", '"fragile, handle with care"', '"two-line\nnote"', "repeat"]


@dataclass(frozen=True)
class CsvInfo:
    """What was generated: byte size, data rows (header excluded) and how many are malformed."""

    size: int
    rows: int
    malformed: int


@dataclass(frozen=True)
class CsvFile(CsvInfo):
    """A generated CSV on disk (removed when its `csv_file` block ends)."""

    path: Path


def _row(i: int, rng: random.Random, malformed: bool) -> str:
    """One data row; a malformed one drops the note or adds a stray field."""
    cid = rng.randrange(100_000)
    fields = [str(i), f"customer{cid}", f"c{cid}@example.com", _COUNTRIES[i % len(_COUNTRIES)],
              f"{rng.randrange(1, 100_000) / 100:.2f}", _NOTES[rng.randrange(len(_NOTES))]]
    if malformed:
        fields = fields[:-1] if i % 2 else fields + ["unexpected"]
    return ",".join(fields) + "\n"


def csv_chunks(size: int, *, malformed_every: int = 0, seed: int = 0,
               chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """Yield UTF-8 chunks of a CSV of at most `size` bytes (whole rows only; header included).

    The generator's return value (`StopIteration.value`, or `generate`) is the `CsvInfo`.
    """
    rng = random.Random(seed)
    parts, pending = [HEADER], len(HEADER)
    total, rows, bad = 0, 0, 0
    if pending > size:
        raise ValueError(f"size {size} is smaller than the header ({pending} bytes)")
    while True:
        is_bad = bool(malformed_every) and (rows + 1) % malformed_every == 0
        row = _row(rows + 1, rng, is_bad)
        if total + pending + len(row) > size:
            break
        parts.append(row)
        pending += len(row)
        rows += 1
        bad += is_bad
        if pending >= chunk_size:
            total += pending
            yield "".join(parts).encode()
            parts, pending = [], 0
    if parts:
        total += pending
        yield "".join(parts).encode()
    return CsvInfo(size=total, rows=rows, malformed=bad)


def generate(size: int, **kwargs) -> tuple[bytes, CsvInfo]:
    """The whole CSV in memory, with its counts (for small sizes and tests)."""
    chunks = csv_chunks(size, **kwargs)
    parts = []
    while True:
        try:
            parts.append(next(chunks))
        except StopIteration as done:
            return b"".join(parts), done.value


@contextlib.contextmanager
def csv_file(size: int, **kwargs) -> Iterator[CsvFile]:
    """Write a generated CSV to a temporary folder; the folder is removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="backendlab-csv-") as folder:
        path = Path(folder) / f"orders-{size}.csv"
        chunks = csv_chunks(size, **kwargs)
        with path.open("wb") as out:
            while True:
                try:
                    out.write(next(chunks))
                except StopIteration as done:
                    info = done.value
                    break
        yield CsvFile(size=info.size, rows=info.rows, malformed=info.malformed, path=path)
