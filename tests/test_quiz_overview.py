"""The progress overview counts answered and right-last-time questions per bank."""

import pytest

from backendlab.quiz import load_bank, progress
from backendlab.quiz.overview import overview


@pytest.fixture
def fresh_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKENDLAB_PROGRESS", str(tmp_path / "progress.json"))


def row(name):
    return next(r for r in overview().rows if r.bank == name)


def test_nothing_answered_yet(fresh_progress):
    start = row("start")
    assert start.answered == 0 and start.right_last_time == 0
    assert start.questions == len(load_bank("start").questions)


def test_last_answer_counts_and_unknown_ids_are_ignored(fresh_progress):
    first, second = (q.id for q in load_bank("start").questions[:2])
    progress.record("start", first, True)
    progress.record("start", second, True)
    progress.record("start", second, False)
    progress.record("start", "removed-question", True)
    start = row("start")
    assert (start.answered, start.right_last_time) == (2, 1)
    assert "2 / " in overview()._repr_html_()
