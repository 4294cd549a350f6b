"""The quiz in a real browser: JupyterLab started here, a notebook run in Chromium, answers clicked.

Needs Debian's /usr/bin/chromium (`scripts/install-browser`); without it the test fails, unless
BACKENDLAB_SKIP_BROWSER=1 asks to skip it. A screenshot of the page is saved in the test's temp
folder (`quiz.png`), so a failure can be seen as the learner would have seen it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from backendlab.quiz import load_bank
from browser.lab import CHROMIUM, chromium, jupyter_lab, live_children

pytestmark = pytest.mark.long_file

FIXTURE = Path(__file__).parent / "browser" / "quiz.ipynb"
BANK, QUESTION = "start", "real-or-embedded"
TIMEOUT_MS = 60_000


def require_chromium() -> None:
    if os.environ.get("BACKENDLAB_SKIP_BROWSER") == "1":
        pytest.skip("BACKENDLAB_SKIP_BROWSER=1")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser "
                    f"(or set BACKENDLAB_SKIP_BROWSER=1 to skip the browser test)", pytrace=False)


def words(text: str) -> str:
    """Text as the page shows it: whitespace collapsed, `code` backticks rendered away."""
    return " ".join(text.replace("`", "").split())


def test_quiz_answers_in_jupyterlab(tmp_path):
    require_chromium()
    question = load_bank(BANK).question(QUESTION)
    right = question.choices[question.correct_indices[0]]
    wrong = next(c for c in question.choices if not c.correct)
    shutil.copy(FIXTURE, tmp_path / "quiz.ipynb")
    children_before = live_children()

    with jupyter_lab(tmp_path) as lab, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        screenshot = tmp_path / "quiz.png"
        try:
            lab.open_and_run(page, "quiz.ipynb")
            quizzes = page.locator(".backendlab-quiz")
            quiz, with_code = quizzes.nth(0), quizzes.nth(1)
            check = quiz.locator(".backendlab-quiz-check")
            feedback = quiz.locator(".backendlab-quiz-feedback")
            try:
                expect(check).to_be_visible(timeout=TIMEOUT_MS)
            except AssertionError:
                outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
                pytest.fail(f"the quiz widget did not render; cell outputs: {outputs}")

            expect(with_code.locator(".widget-checkbox code").first).to_be_visible()
            assert "`" not in with_code.inner_text(), "choices show code, not backticks"

            wrong_box = quiz.get_by_role("checkbox", name=words(wrong.text), exact=True)
            right_box = quiz.get_by_role("checkbox", name=words(right.text), exact=True)
            wrong_box.check()
            check.click()
            expect(feedback.locator(".backendlab-badge.wrong").first).to_have_text(
                "Not quite.")
            shown = words(feedback.inner_text())
            assert words(wrong.explanation) in shown
            assert words(right.explanation) in shown, "the missed right answer is explained"
            expect(feedback.locator(".backendlab-badge.missed")).to_have_count(1)

            right_box.check()
            expect(wrong_box).not_to_be_checked()  # one choice only, as with radio buttons
            check.click()
            expect(feedback.locator(".backendlab-badge.right").first).to_have_text(
                "Correct.")
            shown = words(feedback.inner_text())
            assert words(right.explanation) in shown
            assert words(question.strong_answer) in shown
            assert words(wrong.explanation) not in shown
            expect(feedback.locator(".backendlab-badge.wrong")).to_have_count(0)
            assert not any(ord(ch) > 0x2FFF for ch in feedback.inner_text()), "no emoji"
        except BaseException as exc:
            exc.add_note(f"screenshot of the page: {screenshot}")
            raise
        finally:
            try:
                page.screenshot(path=screenshot, full_page=True)
            except PlaywrightError:
                pass  # the page is gone; the original failure says more than a missing picture

    entry = json.loads((tmp_path / "progress.json").read_text())["banks"][BANK][QUESTION]
    assert (entry["answered"], entry["correct"], entry["last_correct"]) == (2, 1, True)
    assert lab.leftovers == [], "JupyterLab left processes running"
    assert live_children() - children_before == set(), "the browser or a kernel is still running"
