"""The notebook map matches the project's folders."""

from pathlib import Path

from backendlab.catalog import TOPICS, NotebookMap

ROOT = Path(__file__).resolve().parents[1]


def test_numbers_are_the_design_map():
    assert [t.number for t in TOPICS] == [f"{n:02d}" for n in range(12)]


def test_ready_means_the_notebook_exists():
    ready = NotebookMap(ROOT).ready()
    on_disk = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    assert ready == on_disk
    assert "00" in ready


def test_every_notebook_on_disk_is_on_the_map():
    names = {f"{t.number}-{t.slug}.ipynb" for t in TOPICS}
    for folder in ("notebooks", "labs", "solutions"):
        for path in (ROOT / folder).glob("*.ipynb"):
            assert path.name in names, f"{folder}/{path.name} is not on the map in backendlab/catalog.py"


def test_html_links_ready_notebooks_only(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks" / "01-event-loop-and-streaming.ipynb").write_text("{}")
    page = NotebookMap(tmp_path)._repr_html_()
    assert '<a href="01-event-loop-and-streaming.ipynb">' in page
    assert '<a href="05-caching.ipynb">' not in page and "coming" in page
