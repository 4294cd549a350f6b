"""The lab generator: solutions become stubbed labs, byte for byte the same every run."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from backendlab import labs

PROJECT = Path(__file__).resolve().parents[1]
DIFFERS = "labs/01-demo.ipynb differs from what solutions/01-demo.ipynb generates"

SOLUTION_CELL = '''import csv


class Summary:
    def total(self, rows):
        """Add up the rows."""
        ### BEGIN SOLUTION
        return sum(rows)
        ### END SOLUTION

    def first(self, rows):
        ### BEGIN SOLUTION (stub: return None  # your code here)
        for row in rows:
            return row
        ### END SOLUTION


print("kept")'''


def make_solution(root: Path, name: str = "01-demo.ipynb", code: str = SOLUTION_CELL) -> Path:
    cell = new_code_cell(code, execution_count=3, outputs=[new_output("stream", text="kept\n")])
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    nb = new_notebook(cells=[new_markdown_cell("# Demo lab"), cell])
    for index, each in enumerate(nb.cells):
        each.id = f"cell-{index}"
    path = root / "solutions" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def code_of(nb) -> str:
    return next(cell.source for cell in nb.cells if cell.cell_type == "code")


def test_each_region_becomes_its_stub_at_the_marker_indentation(tmp_path):
    code = code_of(labs.generate(make_solution(tmp_path)))
    assert code == '''import csv


class Summary:
    def total(self, rows):
        """Add up the rows."""
        raise NotImplementedError("write this part: see the instructions above")

    def first(self, rows):
        return None  # your code here


print("kept")'''


def test_the_lab_keeps_no_outputs_counts_or_timings(tmp_path):
    nb = labs.generate(make_solution(tmp_path))
    cell = nb.cells[1]
    assert (cell.outputs, cell.execution_count) == ([], None)
    assert "execution" not in cell.metadata
    assert nb.cells[0].source == "# Demo lab"
    assert [each.id for each in nb.cells] == ["cell-0", "cell-1"]


def test_generation_is_byte_for_byte_deterministic(tmp_path):
    make_solution(tmp_path)
    first = labs.write_all(tmp_path)[0].read_bytes()
    assert labs.write_all(tmp_path)[0].read_bytes() == first
    assert first.decode() == labs.render(nbformat.reads(first.decode(), as_version=4))
    assert first.endswith(b"}\n") and not first.endswith(b"\n\n")


@pytest.mark.parametrize("code, message", [
    ("### BEGIN SOLUTION\nx = 1", "line 1: BEGIN SOLUTION is never closed"),
    ("x = 1\n### END SOLUTION", "line 2: END SOLUTION without a BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
     "line 2: BEGIN SOLUTION inside the region opened on line 1"),
    ("### BEGIN SOLUTION stub: pass\n### END SOLUTION", "line 1: malformed marker"),
    ("# BEGIN SOLUTION\nx = 1", "line 1: malformed marker"),
])
def test_broken_markers_name_the_file_cell_and_line(tmp_path, code, message):
    path = make_solution(tmp_path, code=code)
    with pytest.raises(labs.LabError, match=message) as caught:
        labs.generate(path)
    assert f"{path}: cell 2" in str(caught.value)


def test_markers_in_a_markdown_cell_are_an_error(tmp_path):
    path = make_solution(tmp_path)
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "Answer:\n### BEGIN SOLUTION\n42\n### END SOLUTION"
    nbformat.write(nb, path)
    with pytest.raises(labs.LabError, match="cell 1: solution markers work in code cells only"):
        labs.generate(path)


def test_check_reports_missing_then_passes_after_generating(tmp_path, capsys):
    make_solution(tmp_path)
    assert labs.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "labs/01-demo.ipynb is missing" in out and ".venv/bin/backendlab labs" in out
    assert labs.main(["--root", str(tmp_path)]) == 0
    assert labs.main(["--check", "--root", str(tmp_path)]) == 0


def test_check_reports_a_hand_edited_lab_and_a_changed_solution(tmp_path, capsys):
    make_solution(tmp_path)
    lab = labs.write_all(tmp_path)[0]
    lab.write_text(lab.read_text().replace("your code here", "my answer"))
    assert labs.main(["--check", "--root", str(tmp_path)]) == 1
    assert DIFFERS in capsys.readouterr().out
    labs.write_all(tmp_path)
    make_solution(tmp_path, code=SOLUTION_CELL.replace("kept", "changed"))
    assert labs.drift(tmp_path) == [DIFFERS]


def test_check_reports_a_lab_without_a_solution(tmp_path):
    make_solution(tmp_path)
    labs.write_all(tmp_path)
    (tmp_path / "labs" / "02-orphan.ipynb").write_text("{}")
    assert labs.drift(tmp_path) == [
        "labs/02-orphan.ipynb has no solutions/02-orphan.ipynb: delete it, or add the solution"]


def test_broken_markers_fail_the_command_with_one_line(tmp_path, capsys):
    make_solution(tmp_path, code="### BEGIN SOLUTION")
    assert labs.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "never closed" in err and len(err.splitlines()) == 1


def test_the_root_is_found_from_a_subfolder(tmp_path, monkeypatch):
    make_solution(tmp_path)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert labs.find_root() == tmp_path.resolve()
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(labs.LabError, match="no solutions/ folder"):
        labs.find_root()


def test_the_committed_labs_match_their_solutions():
    assert labs.pairs(PROJECT), "no solutions/NN-*.ipynb in the project"
    assert labs.drift(PROJECT) == []
