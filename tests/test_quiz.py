"""The quiz: every bank in the package validates, grading is exact, progress persists, and the
widget works."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from backendlab import catalog
from backendlab.quiz import (QuestionWidget, QuizError, QuizWidget, grade, grade_question,
                             list_banks, load_bank, progress, show_quiz)
from backendlab.quiz.bank import parse_bank

BANK = "start"
SINGLE = "real-or-embedded"
MULTIPLE = "nbval-guards"

VALID = {
    "topic": "99",
    "title": "A bank for tests",
    "questions": [
        {
            "id": "pick-one",
            "tags": ["predict"],
            "kind": "single",
            "prompt": "Which one?",
            "choices": [
                {"text": "right", "correct": True, "explanation": "because it is"},
                {"text": "wrong", "correct": False, "explanation": "because it is not"},
            ],
            "strong_answer": "say it well",
        },
        {
            "id": "pick-many",
            "tags": ["review"],
            "kind": "multiple",
            "prompt": "Which ones?",
            "choices": [
                {"text": "a", "correct": True, "explanation": "a is right"},
                {"text": "b", "correct": False, "explanation": "b is wrong"},
                {"text": "c", "correct": True, "explanation": "c is right"},
            ],
            "strong_answer": "a and c",
        },
    ],
}


@pytest.fixture(autouse=True)
def progress_file(tmp_path, monkeypatch):
    """Every test records progress in its own temp file, never in ~/.backendlab."""
    path = tmp_path / "progress.json"
    monkeypatch.setenv("BACKENDLAB_PROGRESS", str(path))
    return path


def write_bank(tmp_path, data, name="99-test.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- every bank in the package ---------------------------------------------------------------

def test_the_package_ships_banks():
    assert BANK in list_banks()
    assert [load_bank(name).topic for name in list_banks()] == sorted(
        load_bank(name).topic for name in list_banks()), "in topic order"


@pytest.mark.parametrize("name", list_banks())
def test_bank_is_valid_and_its_answers_grade_as_marked(name):
    bank = load_bank(name)
    assert bank.name == name and bank.topic == catalog.topic(name).number
    for question in bank.questions:
        assert grade(name, question.id, list(question.correct_indices)).correct
        for index, choice in enumerate(question.choices):
            if not choice.correct:
                assert not grade(name, question.id, [index]).correct


def test_start_here_questions_are_review_questions():
    bank = load_bank(BANK)
    assert len(bank.questions) >= 4
    assert all(q.tags == ("review",) for q in bank.questions)
    assert {q.kind for q in bank.questions} == {"single", "multiple"}


# --- grading ---------------------------------------------------------------------------------

def test_grade_single_by_index_and_by_text():
    question = load_bank(BANK).question(SINGLE)
    right = question.correct_indices[0]
    assert grade(BANK, SINGLE, [right]).correct
    assert grade(BANK, SINGLE, [question.choices[right].text]).correct
    assert grade(BANK, SINGLE, right).correct


def test_wrong_single_answer_explains_the_choice_and_the_missed_right_one():
    question = load_bank(BANK).question(SINGLE)
    right = question.correct_indices[0]
    wrong = next(i for i, c in enumerate(question.choices) if not c.correct)
    result = grade(BANK, SINGLE, [wrong])
    assert not result.correct
    assert result.chosen == (wrong,) and result.missed == (right,)
    assert [tuple(f) for f in result.feedback] == [
        (question.choices[wrong].text, False, question.choices[wrong].explanation),
        (question.choices[right].text, True, question.choices[right].explanation),
    ]
    assert result.strong_answer == question.strong_answer


def test_multiple_needs_exactly_the_correct_set(tmp_path):
    path = write_bank(tmp_path, VALID)
    question = load_bank(path).question("pick-many")
    assert grade_question(question, [0, 2]).correct
    assert grade_question(question, ["c", "a"]).correct
    partial = grade_question(question, [0])
    assert not partial.correct and partial.missed == (2,)
    assert [f.text for f in partial.feedback] == ["a", "c"]
    extra = grade_question(question, [0, 1, 2])
    assert not extra.correct and extra.missed == ()
    assert [f.correct for f in extra.feedback] == [True, False, True]


@pytest.mark.parametrize("chosen, message", [
    ([9], "out of range"),
    (["not a choice"], "is not a choice"),
    ([True], "choice index or a choice text"),
    ([], "pick at least one"),
    ([0, 1], "single-choice"),
])
def test_bad_answers_are_clear_errors(chosen, message):
    with pytest.raises(QuizError, match=message):
        grade(BANK, SINGLE, chosen)


def test_unknown_bank_lists_the_known_ones():
    with pytest.raises(QuizError) as info:
        grade("01-no-such-topic", SINGLE, [0])
    assert "01-no-such-topic" in str(info.value) and BANK in str(info.value)
    assert "QuizError" in info.value._render_traceback_()[0]


def test_unknown_question_lists_the_ids():
    with pytest.raises(QuizError, match=f"no question 'nope'.*{SINGLE}"):
        grade(BANK, "nope", [0])


def test_select_by_tag_and_ids(tmp_path):
    bank = load_bank(write_bank(tmp_path, VALID))
    assert [q.id for q in bank.select()] == ["pick-one", "pick-many"]
    assert [q.id for q in bank.select(tag="review")] == ["pick-many"]
    assert [q.id for q in bank.select(ids=["pick-many", "pick-one"])] == ["pick-many", "pick-one"]
    with pytest.raises(QuizError, match="unknown tag"):
        bank.select(tag="reveiw")
    with pytest.raises(QuizError, match="no question matching"):
        bank.select(tag="review", ids=["pick-one"])


# --- validation ------------------------------------------------------------------------------

def broken(change):
    data = copy.deepcopy(VALID)
    change(data)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(level="easy"), r"the bank: unknown field\(s\) level"),
    (lambda d: d["questions"][1].update(hint="x"), r"'pick-many'\): unknown field\(s\) hint"),
    (lambda d: d["questions"][1]["choices"][0].update(why="x"),
     r"'pick-many'\), choice #1: unknown field\(s\) why"),
    (lambda d: d["questions"][1]["choices"][2].pop("explanation"),
     r"'pick-many'\), choice #3: missing field\(s\) explanation"),
    (lambda d: d["questions"][0]["choices"][1].update(explanation="  "),
     r"'pick-one'\), choice #2: explanation must be non-empty"),
    (lambda d: [c.update(correct=False) for c in d["questions"][1]["choices"]],
     r"'pick-many'\): no choice is marked correct"),
    (lambda d: d["questions"][0]["choices"][1].update(correct=True),
     r"'pick-one'\): a single-choice question needs exactly one correct choice, has 2"),
    (lambda d: d["questions"][0]["choices"][0].update(correct=False),
     r"'pick-one'\): a single-choice question needs exactly one correct choice, has 0"),
    (lambda d: d["questions"][1].update(id="pick-one"), r"question #2: duplicate id 'pick-one'"),
    (lambda d: d["questions"][0].update(kind="several"), r"'pick-one'\): kind must be one of"),
    (lambda d: d["questions"][0].update(tags=["predcit"]), r"'pick-one'\): tags must be"),
    (lambda d: d["questions"][0]["choices"][0].update(correct="yes"), r"must be true or false"),
    (lambda d: d["questions"][0]["choices"][1].update(text="right"), r"two choices have the same"),
    (lambda d: d["questions"][0].update(choices=d["questions"][0]["choices"][:1]), r"at least two"),
    (lambda d: d["questions"][0].pop("strong_answer"), r"missing field\(s\) strong_answer"),
    (lambda d: d.update(topic=99), r"topic must be a quoted two-digit number"),
    (lambda d: d.update(questions=[]), r"questions must be a non-empty list"),
    (lambda d: d["questions"][1].update(prompt="Which? (Pick all that apply.)"),
     r"'pick-many'\): the prompt says to pick all that apply"),
])
def test_invalid_banks_name_the_file_and_the_question(tmp_path, change, message):
    path = write_bank(tmp_path, broken(change))
    with pytest.raises(QuizError, match=message) as info:
        load_bank(path)
    assert str(path) in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "99-test.yaml"
    path.write_text("topic: '99'\nquestions: [unclosed\n")
    with pytest.raises(QuizError, match="not valid YAML") as info:
        load_bank(path)
    assert str(path) in str(info.value)


def test_the_valid_fixture_is_valid(tmp_path):
    bank = load_bank(write_bank(tmp_path, VALID))
    assert (bank.name, bank.topic, len(bank.questions)) == ("99-test", "99", 2)


# --- progress --------------------------------------------------------------------------------

def test_progress_counts_answers_per_question(progress_file):
    assert progress.load() == {}
    assert progress.question(BANK, SINGLE) is None
    progress.record(BANK, SINGLE, False)
    entry = progress.record(BANK, SINGLE, True)
    assert (entry["answered"], entry["correct"], entry["last_correct"]) == (2, 1, True)
    progress.record("eventloop", "x", True)
    stored = json.loads(progress_file.read_text())
    assert stored["version"] == 1
    assert stored["banks"][BANK][SINGLE]["answered"] == 2
    assert list(progress_file.parent.glob(".progress-*")) == []


def test_progress_reset(progress_file):
    progress.record(BANK, SINGLE, True)
    progress.record("eventloop", "x", True)
    progress.reset(BANK)
    assert list(progress.load()) == ["eventloop"]
    progress.reset()
    assert progress.load() == {}


def test_progress_defaults_to_home(tmp_path, monkeypatch):
    monkeypatch.delenv("BACKENDLAB_PROGRESS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert progress.path() == tmp_path / ".backendlab" / "progress.json"
    progress.record(BANK, SINGLE, True)
    assert (tmp_path / ".backendlab" / "progress.json").is_file()


def test_corrupt_progress_is_a_clear_error(progress_file):
    progress_file.write_text("{not json")
    with pytest.raises(QuizError, match="delete the file") as info:
        progress.load()
    assert str(progress_file) in str(info.value)


# --- widget, without a browser ---------------------------------------------------------------

def test_checking_a_single_choice_shows_feedback_and_records_it(progress_file):
    quiz = show_quiz(BANK, ids=[SINGLE])
    widget = quiz.questions[0]
    question = widget.question
    wrong = next(i for i, c in enumerate(question.choices) if not c.correct)
    assert widget.submit() is None and "Pick an answer" in widget.feedback.value
    widget.inputs[wrong].value = True
    widget.check.click()
    assert 'class="backendlab-badge wrong" style="' in widget.feedback.value
    assert ">Not quite.</span>" in widget.feedback.value
    assert 'class="backendlab-badge missed" style="' in widget.feedback.value
    widget.inputs[question.correct_indices[0]].value = True
    assert widget.selected() == [question.correct_indices[0]], "ticking one unticks the other"
    assert widget.submit().correct
    assert 'class="backendlab-badge right" style="' in widget.feedback.value
    assert ">Correct.</span>" in widget.feedback.value
    assert "badge wrong" not in widget.feedback.value
    assert "<code>REDIS_URL</code>" in widget.feedback.value
    entry = progress.question(BANK, SINGLE)
    assert (entry["answered"], entry["correct"], entry["last_correct"]) == (2, 1, True)


def test_a_single_choice_keeps_one_box_ticked_and_can_be_cleared():
    widget = show_quiz(BANK, ids=[SINGLE]).questions[0]
    assert "backendlab-quiz-single" in widget._dom_classes
    for box in widget.inputs:
        box.value = True
    assert widget.selected() == [len(widget.inputs) - 1]
    widget.inputs[-1].value = False
    assert widget.selected() == []


def test_choice_labels_render_code_and_feedback_uses_no_emoji(progress_file):
    widget = show_quiz("eventloop", ids=["detect-blocking"]).questions[0]
    assert any("`" in choice.text for choice in widget.question.choices)
    labels = [box.description for box in widget.inputs]
    assert all(box.description_allow_html for box in widget.inputs)
    assert any("<code>" in label for label in labels) and not any("`" in l for l in labels)
    widget.inputs[0].value = True
    widget.submit()
    assert not any(ord(ch) > 0x2FFF for ch in widget.feedback.value), widget.feedback.value


def test_multiple_choice_uses_checkboxes():
    widget = show_quiz(BANK, ids=[MULTIPLE]).questions[0]
    assert len(widget.inputs) == len(widget.question.choices)
    for index in widget.question.correct_indices:
        widget.inputs[index].value = True
    assert widget.selected() == list(widget.question.correct_indices)
    assert widget.submit().correct


def test_widget_css_classes_and_selection():
    quiz = show_quiz(BANK, tag="review")
    assert isinstance(quiz, QuizWidget) and "backendlab-quiz" in quiz._dom_classes
    assert len(quiz.questions) == len(load_bank(BANK).questions)
    widget = quiz.questions[0]
    assert isinstance(widget, QuestionWidget)
    assert "backendlab-quiz-check" in widget.check._dom_classes
    assert "backendlab-quiz-feedback" in widget.feedback._dom_classes


def test_text_repr_is_the_questions_without_answers():
    quiz = show_quiz(BANK, ids=[SINGLE, MULTIPLE])
    text = quiz._repr_mimebundle_()["text/plain"]
    assert text == repr(quiz) and len(text) > 110
    assert "Start here" in text and "2 questions" in text and "(pick all that apply)" in text
    for question in (load_bank(BANK).question(SINGLE), load_bank(BANK).question(MULTIPLE)):
        assert question.prompt.split()[1] in text
        assert all(choice.text.split()[-1] in text for choice in question.choices)
        assert all(choice.explanation not in text for choice in question.choices)


def test_in_a_kernel_the_quiz_shows_once_with_readable_text(tmp_path, monkeypatch):
    for name in ("IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f"from backendlab.quiz import show_quiz\nshow_quiz({BANK!r}, ids=[{SINGLE!r}])")]
    NotebookClient(nb, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert len(outputs) == 1, outputs
    data = outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("Quiz 00") and "( )" in data["text/plain"]


def test_progress_under_a_bank_s_older_name_is_read_as_its_slug(progress_file):
    progress_file.write_text(json.dumps({"version": 1, "banks": {
        "06-rate-limiting": {"a": {"answered": 1, "correct": 0, "last_correct": False},
                             "b": {"answered": 2, "correct": 1, "last_correct": True}},
        "ratelimit": {"a": {"answered": 3, "correct": 3, "last_correct": True}},
        "99-unknown": {"c": {"answered": 1, "correct": 1, "last_correct": True}}}}))
    banks = progress.load()
    assert sorted(banks) == ["99-unknown", "ratelimit"]
    assert banks["ratelimit"]["a"]["answered"] == 3, "the slug's own entry wins"
    assert banks["ratelimit"]["b"]["answered"] == 2, "the older name's entries carry over"
    progress.record("ratelimit", "c", True)
    assert "06-rate-limiting" not in json.loads(progress_file.read_text())["banks"]


def test_a_bank_is_found_by_slug_or_number_and_its_topic_must_match_the_catalog(tmp_path):
    assert load_bank("06").name == load_bank("ratelimit").name == "ratelimit"
    assert list_banks()[:2] == ["start", "eventloop"]
    with pytest.raises(QuizError, match=r'topic must be "06", the number of topic ratelimit'):
        parse_bank({**VALID, "topic": "07"}, tmp_path / "questions.yaml", "ratelimit", "06")
