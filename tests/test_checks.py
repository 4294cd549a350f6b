"""Check suites: the framework, lab 01's server and checks, and the proof that no check is vacuous.

The proof runs every solution notebook (its check cell must report every check passed) and the
lab generated from it (the same cell must report every check failed, as a Report, not a traceback).
"""

import importlib.util
import math
import re
import tempfile
from codecs import getincrementaldecoder
from collections import Counter as Tally
from pathlib import Path

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

from backendlab import labs, processes
from backendlab.checks import Check, CheckFailed, describe_error, function_module, lab01, run_checks
from backendlab.checks.lab01 import reference
from backendlab.servers import start_server

PROJECT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((PROJECT / "solutions").glob(labs.PATTERN))
LIMIT = 2
SETTINGS = {"limit": 2}


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_module(solution: Path, folder: Path):
    """The code cells of a solution notebook that hold its answers, imported as a module."""
    cells = [cell.source for cell in nbformat.read(solution, as_version=4).cells
             if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source]
    path = folder / f"solution_{solution.stem[:2]}.py"
    path.write_text("\n\n".join(cells))
    return import_file(path, path.stem)


# The framework

def saw(value):
    return f"saw {value}"


def hints(value):
    raise CheckFailed("do the other thing")


def asserts(value):
    if value != 2:
        raise AssertionError("value should be 2")


def crashes(value):
    return {}[value]


def test_run_checks_reports_each_verdict_with_its_hint():
    suite = [Check("a", saw), Check("b", hints), Check("c", asserts), Check("d", crashes)]
    report = run_checks(suite, 1, title="demo")
    assert [(r.name, r.passed, r.message) for r in report.results] == [
        ("a", True, "saw 1"), ("b", False, "do the other thing"), ("c", False, "value should be 2"),
        ("d", False, "KeyError: 1")]
    assert not report.passed
    assert str(report) == ("demo: 1 of 4 checks passed\n  ✅ a: saw 1\n  ❌ b: do the other thing\n"
                           "  ❌ c: value should be 2\n  ❌ d: KeyError: 1")
    assert repr(report) == str(report)
    with pytest.raises(AssertionError, match="demo: 1 of 4 checks passed"):
        report.raise_if_failed()
    assert run_checks(suite[:1], 2).raise_if_failed().passed


def test_a_report_renders_as_an_escaped_html_table():
    page = run_checks([Check("x < y", saw)], "<script>")._repr_html_()
    assert "<table>" in page and "✅" in page and "x &lt; y" in page and "saw &lt;script&gt;" in page
    assert "<script>" not in page


def test_describe_error_gives_one_line_and_the_line_of_the_function():
    def broken(value):
        total = value + 1
        raise ValueError(f"first {total}\nsecond")

    with pytest.raises(ValueError) as caught:
        broken(0)
    assert describe_error(caught.value, broken) == "ValueError: first 1 second (line 3 of broken)"
    assert describe_error(KeyError()) == "KeyError"


def uses_globals(rows):
    decoder = getincrementaldecoder("utf-8")()
    return [math.floor(r) for r in Tally(rows)][:LIMIT], decoder.decode(b"ok")


def uses_settings(rows):
    return rows[:SETTINGS["limit"]]


def uses_undefined(rows):
    return undefined_helper(rows)  # noqa: F821


def test_function_module_carries_modules_library_objects_and_literals(tmp_path):
    source = function_module(uses_globals)
    assert source.splitlines()[:4] == ["LIMIT = 2", "from collections import Counter as Tally",
                                       "from codecs import getincrementaldecoder", "import math"]
    path = tmp_path / "shipped.py"
    path.write_text(source)
    assert import_file(path, "shipped").uses_globals([1.5, 2.5, 3.5]) == ([1, 2], "ok")


def test_function_module_says_what_cannot_travel():
    with pytest.raises(CheckFailed, match="uses `SETTINGS` from elsewhere in the notebook.*define "
                                          "`SETTINGS` inside uses_settings"):
        function_module(uses_settings)
    with pytest.raises(CheckFailed, match="uses `undefined_helper`, which is not defined"):
        function_module(uses_undefined)
    with pytest.raises(CheckFailed, match="cannot read the source of len"):
        function_module(len)


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


def test_lab01_passes_the_solution_and_leaves_nothing_behind(tmp_path):
    summarize_csv = solution_module(PROJECT / "solutions" / "01-event-loop-and-streaming.ipynb",
                                    tmp_path).summarize_csv
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("backendlab-lab01-*")), processes.running()
    lab01.check(summarize_csv).raise_if_failed()
    assert (set(temp.glob("backendlab-lab01-*")), processes.running()) == before


def test_lab01_fails_a_handler_that_buffers_the_body_on_latency_and_memory():
    report = lab01.check(buffering_summarize_csv)
    verdicts = [result.passed for result in report.results]
    assert verdicts == [True, True, True, False, False], str(report)
    latency, memory = (result.message for result in report.results[3:])
    assert re.search(r"/health took \d+ ms \(p99\) during a 20 MB upload, limit 1000 ms", latency)
    assert re.search(r"memory grew by \d+ MB during a 20 MB upload, limit 10 MB: you are holding",
                     memory)


def test_lab01_answers_a_function_that_is_not_async_with_a_hint():
    report = lab01.check(lambda chunks: {})
    assert not any(result.passed for result in report.results)
    assert all("pass your `async def` function" in result.message for result in report.results)


# No check is vacuous: every one passes on the solution and fails on the generated lab

def execute(nb, folder: Path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(folder / "ipython"))
    monkeypatch.setenv("MPLCONFIGDIR", str(folder / "matplotlib"))
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def check_cell_counts(nb) -> tuple[int, int, str]:
    """(passed, total, text) from the Report the notebook's last code cell shows."""
    cell = [cell for cell in nb.cells if cell.cell_type == "code"][-1]
    shown = [output.data for output in cell.outputs if output.output_type == "execute_result"]
    assert shown and "text/html" in shown[0], f"the check cell shows no Report: {cell.outputs}"
    text = shown[0]["text/plain"]
    found = re.search(r"(\d+) of (\d+) checks passed", text)
    return int(found[1]), int(found[2]), text


def test_there_are_solutions_to_prove():
    assert SOLUTIONS


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_every_check_passes_on_the_solution_notebook(solution, tmp_path, monkeypatch):
    passed, total, text = check_cell_counts(execute(nbformat.read(solution, as_version=4), tmp_path,
                                                    monkeypatch))
    assert passed == total > 0, text


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_every_check_fails_on_the_generated_lab_with_a_report(solution, tmp_path, monkeypatch):
    passed, total, text = check_cell_counts(execute(labs.generate(solution), tmp_path, monkeypatch))
    assert passed == 0 < total, text
