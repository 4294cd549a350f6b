"""No check is vacuous: every lab's checks pass on its solution notebook (its check cell reports
every check passed) and fail on the lab generated from it (the same cell reports every check
failed, as a Report, not a traceback). Parametrized by notebook, so `make test TOPIC=NN` picks a
topic's own."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from backendlab import labs

PROJECT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((PROJECT / "solutions").glob(labs.PATTERN))


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
