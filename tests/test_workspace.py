"""The learner's workspace: clean copies made once, never overwritten, refreshed on request."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from backendlab.workspace import REPLACED, Workspace, WorkspaceError, clean_copy

ROOT = Path(__file__).resolve().parents[1]


def executed_notebook(path: Path, text: str = "print('hi')") -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(text, execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="hi\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# predict"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    for name in ("notebooks/00-start-here", "notebooks/01-event-loop", "labs/01-event-loop"):
        executed_notebook(root / f"{name}.ipynb")
    return root


def test_the_repository_notebooks_become_copies_without_outputs(repo, tmp_path):
    made = Workspace(repo, tmp_path / "work").create()
    assert sorted(p.relative_to(tmp_path / "work").as_posix() for p in made) == [
        "labs/01-event-loop.ipynb", "notebooks/00-start-here.ipynb", "notebooks/01-event-loop.ipynb"]
    copy = nbformat.read(made[0], as_version=4)
    code = [c for c in copy.cells if c.cell_type == "code"]
    assert [(c.outputs, c.execution_count) for c in code] == [([], None)]
    assert "widgets" not in copy.metadata
    assert code[0].source == "print('hi')", "the code itself is kept"


def test_a_learners_copy_is_never_overwritten_and_new_notebooks_arrive(repo, tmp_path):
    space = Workspace(repo, tmp_path / "work")
    space.create()
    mine = space.folder / "notebooks/01-event-loop.ipynb"
    mine.write_text(mine.read_text().replace("print('hi')", "print('my answer')"))
    executed_notebook(repo / "notebooks/05-caching.ipynb")

    made = space.create()

    assert [p.name for p in made] == ["05-caching.ipynb"]
    assert "my answer" in mine.read_text()


def test_refresh_replaces_one_notebook_and_keeps_the_old_copy(repo, tmp_path):
    space = Workspace(repo, tmp_path / "work")
    space.create()
    mine = space.folder / "notebooks/01-event-loop.ipynb"
    mine.write_text(mine.read_text().replace("print('hi')", "print('my answer')"))
    executed_notebook(repo / "notebooks/01-event-loop.ipynb", "print('updated')")

    done = space.refresh("notebooks/01")

    assert [target for target, _ in done] == [mine]
    assert "updated" in mine.read_text() and "my answer" not in mine.read_text()
    kept = done[0][1]
    assert kept.parent == space.folder / REPLACED and "my answer" in kept.read_text()
    assert "print('hi')" in (space.folder / "labs/01-event-loop.ipynb").read_text(), \
        "the lab was not asked for"


def test_a_number_refreshes_the_notebook_and_its_lab(repo, tmp_path):
    space = Workspace(repo, tmp_path / "work")
    done = space.refresh("01")
    assert sorted(t.parent.name for t, kept in done) == ["labs", "notebooks"]
    assert all(kept is None for _, kept in done), "nothing to keep: there was no copy yet"


def test_an_unknown_name_lists_what_exists(repo, tmp_path):
    with pytest.raises(WorkspaceError, match="known numbers: 00, 01"):
        Workspace(repo, tmp_path / "work").refresh("42")


def test_every_real_notebook_and_lab_copies_into_a_valid_notebook():
    sources = Workspace(ROOT, ROOT / "unused").sources()
    assert {s.parent.name for s in sources} == {"notebooks", "labs"}
    for source in sources:
        nbformat.validate(clean_copy(source))


def test_git_ignores_the_default_workspace():
    ignored = subprocess.run(["git", "check-ignore", "-q", "my-work/notebooks/00-start-here.ipynb"],
                             cwd=ROOT, check=False)
    assert ignored.returncode == 0, "my-work/ must be in .gitignore"


def test_the_refresh_command_says_what_it_kept(tmp_path):
    work = tmp_path / "work"
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "backendlab", "refresh", "labs/01", "--workspace", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    first, second = run(), run()
    assert first.returncode == 0 and "fresh copy" in first.stdout and "kept" not in first.stdout
    assert second.returncode == 0 and "your old one is kept as" in second.stdout
    unknown = subprocess.run([sys.executable, "-m", "backendlab", "refresh", "99", "--workspace",
                              str(work)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no notebook or lab '99'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
