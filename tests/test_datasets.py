"""The CSV generator: deterministic, sized as asked, and honest about what it generated."""

import csv
import io

import pytest

from backendlab import datasets


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def test_same_seed_same_bytes_other_seed_other_bytes():
    first, _ = datasets.generate(50_000, seed=1)
    again, _ = datasets.generate(50_000, seed=1)
    other, _ = datasets.generate(50_000, seed=2)
    assert first == again
    assert first != other


@pytest.mark.parametrize("size", [200, 10_000, 333_333, 1_000_000])
def test_size_is_at_most_the_target_and_within_one_row(size):
    data, info = datasets.generate(size)
    assert len(data) == info.size <= size
    assert size - info.size < 200, "generation stopped more than one row early"


def test_too_small_for_the_header_is_an_error():
    with pytest.raises(ValueError, match="header"):
        datasets.generate(10)


def test_counts_match_what_a_csv_parser_sees():
    data, info = datasets.generate(300_000, malformed_every=50)
    rows = parse(data)
    header, body = rows[0], rows[1:]
    assert header == datasets.COLUMNS
    assert len(body) == info.rows
    assert sum(len(r) != len(header) for r in body) == info.malformed
    assert info.malformed == info.rows // 50


def test_without_malformed_every_row_is_well_formed():
    data, info = datasets.generate(200_000)
    assert info.malformed == 0
    assert all(len(r) == len(datasets.COLUMNS) for r in parse(data))


def test_some_fields_are_quoted_with_commas_and_line_breaks():
    data, info = datasets.generate(100_000)
    notes = {r[-1] for r in parse(data)[1:]}
    assert "fragile, handle with care" in notes
    assert "two-line\nnote" in notes
    assert data.count(b"\n") > info.rows + 1, "quoted line breaks make lines outnumber rows"


def test_chunks_are_bounded_and_join_to_the_whole():
    chunks = list(datasets.csv_chunks(1_000_000, chunk_size=64 * 1024))
    assert len(chunks) > 10
    assert max(len(c) for c in chunks[:-1]) < 64 * 1024 + 200
    assert b"".join(chunks) == datasets.generate(1_000_000)[0]


def test_csv_file_is_written_then_removed():
    with datasets.csv_file(500_000, malformed_every=10) as f:
        assert f.path.stat().st_size == f.size
        assert f.path.read_bytes() == datasets.generate(500_000, malformed_every=10)[0]
        folder = f.path.parent
    assert not f.path.exists()
    assert not folder.exists()


def test_csv_file_is_removed_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with datasets.csv_file(10_000) as f:
            raise RuntimeError("boom")
    assert not f.path.parent.exists()
