"""Notebook 02's experiments at small sizes: each effect the notebook claims, asserted here too."""

import re

from backendlab.topics.uploads import experiments as ex

MB = 2**20


def test_memory_mode_grows_with_concurrency_and_streaming_stays_flat():
    result = ex.storage_modes(file_mb=6, concurrency=(1, 3), modes=("memory", "stream"),
                              seconds=0.4, progress=False)
    memory, stream = result.growth_mb()["memory"], result.growth_mb()["stream"]
    assert all(s == 201 for run in result.runs.values() for s in run.statuses)
    assert memory[1] >= 0.6 * 3 * 6, result.summary()
    assert memory[1] - memory[0] >= 0.6 * 2 * 6, result.summary()  # most of a file per extra upload
    assert max(stream) <= 1.5, result.summary()
    assert result.leftover_partial == 0


def test_the_size_limit_cuts_the_body_off():
    run = ex.size_limit(limit_mb=0.5, send_mb=10)
    assert run.status == 413 and "over the 524288-byte limit" in run.error
    assert run.limit < run.server_read <= run.limit + 512 * 1024
    assert run.files_left == 0 and run.still_up and run.rss_growth < 4 * MB


def test_only_the_magic_check_refuses_spoofs():
    rows = {row["file"]: row for row in ex.type_checks()}
    for spoof in ("a Linux executable renamed", "an HTML page with a script", "a PDF named .png"):
        assert (rows[spoof]["content-type check"], rows[spoof]["magic check"]) == (201, 415)
    assert rows["a real PNG"]["magic check"] == 201


def test_hostile_names_land_under_generated_names():
    run = ex.hostile_names()
    stored = {row["stored as"] for row in run.rows if row["status"] == 201}
    assert stored == run.folder_files and len(stored) == 7
    assert all(re.fullmatch(r"[0-9a-f]{32}\.png", name) for name in stored)
    assert run.outside == []


def test_direct_uploads_spare_the_server():
    paths = ex.proxied_vs_direct(file_mb=6, files=2)
    proxied, direct = paths.costs.values()
    assert proxied.ok == direct.ok == 2 and paths.rows_recorded == 4
    assert proxied.bytes_received >= 2 * 6 * MB > 100 * direct.bytes_received
    assert direct.rss_growth < proxied.rss_growth


def test_completion_and_downloads():
    cases, rows = ex.completion_checks()
    assert [c.status for c in cases] == [409, 422, 201] and rows == 1
    statuses = [c.status for c in ex.signed_downloads(link_seconds=1)]
    assert statuses == [200, 403, 403, 200, 403, 403]


def test_the_bad_input_catalogue():
    bad = ex.bad_inputs(limit_kb=128, read_timeout=0.5)
    assert [c.status for c in bad.cases] == [413, 413, 413, 413, 415, 415, 415, 400, 400, 415,
                                             400, 401, 408]
    assert bad.still_up and bad.files_left == 0
    assert all(c.answer and "stored" not in c.answer for c in bad.cases)
