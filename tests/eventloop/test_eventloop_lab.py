"""Lab 01: its server (csvlab) and its checks, on the solution and on the mistake the lab is about."""

import re
import sys
import tempfile
import types

import httpx
import pytest

from backendlab import processes
from backendlab.servers import start_server
from backendlab.topics.eventloop import checks as lab01
from backendlab.topics.eventloop.checks import reference
from helpers.solutions import PROJECT, import_file, solution_module

# Lab 01's server

HANDLER = '''
async def summarize(chunks):
    text = b"".join([chunk async for chunk in chunks]).decode()
    if text == "crash":
        raise RuntimeError("boom\\nsecond line")
    return {"size": len(text)}
'''


@pytest.fixture(scope="module")
def csvlab(tmp_path_factory):
    path = tmp_path_factory.mktemp("csvlab") / "handler.py"
    path.write_text(HANDLER)
    with start_server("csvlab", handler=f"{path}:summarize") as server:
        yield server


def post(server, body: bytes, content_type: str | None = "text/csv; charset=utf-8"):
    headers = {"content-type": content_type} if content_type else {}
    return httpx.post(server.url + "/upload", content=body, headers=headers)


def test_csvlab_answers_the_handler_result_as_json(csvlab):
    assert httpx.get(csvlab.url + "/health").json() == {"ok": True}
    assert post(csvlab, "a,1\nZoë,2\n".encode()).json() == {"size": 10}


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_csvlab_refuses_a_body_that_is_not_csv(csvlab, content_type):
    response = post(csvlab, b"a,1\n", content_type)
    assert response.status_code == 415
    assert response.json()["error"].startswith("send the CSV with Content-Type: text/csv")


def test_csvlab_answers_undecodable_bytes_with_400(csvlab):
    response = post(csvlab, b"name,value\n\xff\xfe,1\n")
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not valid UTF-8")


def test_csvlab_reports_a_crashing_handler_in_one_line(csvlab):
    response = post(csvlab, b"crash")
    assert response.status_code == 500
    assert response.json() == {
        "error": "summarize raised RuntimeError: boom second line (line 4 of summarize)"}


# Lab 01's checks, called directly

async def buffering_summarize_csv(chunks):
    """The mistake lab 01 is about: collect the whole body, then parse it in one long pass."""
    return reference(b"".join([chunk async for chunk in chunks]).decode())


def test_the_sample_in_the_lab_instructions_has_the_documented_answer():
    assert reference(lab01.SAMPLE) == {"rows": 3, "malformed": 2,
                                       "columns": ["customer", "amount", "quantity", "discount"],
                                       "sums": {"amount": 60.5, "quantity": 6.0, "discount": 0.35}}
    assert reference("") == {"rows": 0, "malformed": 0, "columns": [], "sums": {}}


def test_lab01_passes_the_solution_and_leaves_nothing_behind(tmp_path, monkeypatch):
    summarize_csv = solution_module(PROJECT / "solutions" / "01-event-loop-and-streaming.ipynb",
                                    tmp_path).summarize_csv
    # The check's temp folder goes to a folder of this test's own: the lab proof of solution 01,
    # running on another worker, makes and removes its own in the shared temp folder meanwhile.
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    running = processes.running()
    lab01.check(summarize_csv).raise_if_failed()
    assert (list(temp.glob("backendlab-lab01-*")), processes.running()) == ([], running)


def test_lab01_runs_only_the_named_checks(tmp_path):
    summarize_csv = solution_module(PROJECT / "solutions" / "01-event-loop-and-streaming.ipynb",
                                    tmp_path).summarize_csv
    names = [check.name for check in lab01.SUITE]
    report = lab01.check(summarize_csv, only=names[1])
    assert [result.name for result in report.results] == [names[1]] and report.passed, str(report)


def test_lab01_fails_a_handler_that_buffers_the_body_on_latency_and_memory():
    report = lab01.check(buffering_summarize_csv)
    verdicts = [result.passed for result in report.results]
    assert verdicts == [True, True, True, False, False], str(report)
    latency, memory = (result.message for result in report.results[3:])
    # Judged as a share of the upload's own time, so the verdict holds on a fast or a busy machine.
    assert re.search(r"/health took \d+ ms \(p99\) during a 20 MB upload of [\d.]+ s: \d+% of it, "
                     r"limit 25% of the upload", latency)
    assert re.search(r"memory grew by \d+ MB during a 20 MB upload, limit 10 MB: you are holding",
                     memory)


def test_lab01_answers_a_function_that_is_not_async_with_a_hint():
    report = lab01.check(lambda chunks: {})
    assert not any(result.passed for result in report.results)
    assert all("pass your `async def` function" in result.message for result in report.results)


def test_a_handler_the_server_cannot_import_fails_with_the_servers_last_line(tmp_path, monkeypatch):
    """A module the notebook has but the server's process cannot import: one line, no traceback."""
    monkeypatch.setitem(sys.modules, "backendlab_ghost", types.ModuleType("backendlab_ghost"))
    path = tmp_path / "cell.py"
    path.write_text("import backendlab_ghost\n\n\nasync def summarize(chunks):\n"
                    "    return backendlab_ghost.summary\n")
    (result,) = lab01.check(import_file(path, "cell").summarize,
                            only="clean CSV: rows, columns, sums").results
    assert result.message.startswith("the server could not load summarize: "), result.message
    assert "backendlab_ghost" in result.message and "\n" not in result.message
