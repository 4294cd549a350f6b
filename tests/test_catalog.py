"""The notebook map matches the project's folders."""

import re
from pathlib import Path

import pytest

from backendlab import catalog, servers
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
    names = {f"{t.stem}.ipynb" for t in TOPICS}
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


def test_a_topic_is_found_by_number_or_slug():
    assert catalog.topic("06") is catalog.topic("6") is catalog.topic("ratelimit")
    assert catalog.topic("06").stem == "06-rate-limiting"
    with pytest.raises(KeyError, match=r"no topic 'nope'; topics: 00 \(start\), 01 \(eventloop\)"):
        catalog.topic("nope")


def test_every_built_topic_has_its_package_parts_and_every_notebook_a_package():
    built = {t.number for t in catalog.built()}
    assert built == set(NotebookMap(ROOT).ready())
    for topic in catalog.built():
        assert topic.questions.is_file(), topic.slug
        assert (ROOT / "tests" / topic.slug).is_dir(), f"tests/{topic.slug}/ holds its tests"
        if catalog.notebook_path(topic, "labs", ROOT):
            assert topic.has("checks"), f"{topic.slug} has a lab, so a checks package"
        for name, module in topic.servers.items():
            assert topic.has(module) and hasattr(topic.module(module), "create_app"), name


def test_servers_are_every_topic_s_plus_the_kit_s_proxy():
    assert set(servers.SERVERS) == {"proxy", "eventloop", "csvlab", "uploads", "uploadlab",
                                    "caching", "ratelimit", "notifications"}
    assert servers.SERVERS["ratelimit"] == "backendlab.topics.ratelimit.server"


def test_the_kit_imports_no_topic():
    kit = [p for p in (ROOT / "backendlab").rglob("*.py")
           if "topics" not in p.relative_to(ROOT / "backendlab").parts and p.name != "__main__.py"]
    importing = [str(p.relative_to(ROOT)) for p in kit
                 if re.search(r"^\s*(from|import) backendlab\.topics", p.read_text(), re.M)]
    assert importing == []
