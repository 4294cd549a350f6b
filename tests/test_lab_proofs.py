"""No check is vacuous: every lab's checks pass on its solution notebook (its check cell reports
every check passed) and fail on the lab generated from it (the same cell reports every check
failed, as a Report, not a traceback). Every lab's check() runs through the kit's runner, so each
accepts `only=`. Parametrized by notebook or topic, so `make test TOPIC=NN` picks a topic's own."""

import inspect
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from backendlab import catalog, labs

pytestmark = pytest.mark.long_file

PROJECT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((PROJECT / "solutions").glob(labs.PATTERN))
LAB_TOPICS = [topic for topic in catalog.TOPICS if topic.has("checks")]


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


def test_every_solution_has_its_topics_checks():
    assert sorted(solution.stem for solution in SOLUTIONS) == [topic.stem for topic in LAB_TOPICS]


@pytest.mark.parametrize("topic", LAB_TOPICS, ids=lambda topic: topic.stem)
def test_every_lab_accepts_only_and_refuses_an_unknown_name_before_it_starts_anything(topic):
    checks = topic.module("checks")
    learner = [name for name in inspect.signature(checks.check).parameters if name != "only"]
    names = ", ".join(repr(check.name) for check in checks.SUITE)
    with pytest.raises(ValueError) as refused:
        checks.check(*[None] * len(learner), only=["no such check"])
    assert str(refused.value) == f"no check named 'no such check'; the checks are: {names}"
