"""The banks can only be passed by understanding: choices are shuffled per learner and per question
(stable for one learner), the right answer's place and length give nothing away, and every choice
says why it is right or wrong."""

from __future__ import annotations

from collections import Counter

import pytest

from backendlab.quiz import QuestionWidget, list_banks, load_bank
from backendlab.quiz.order import choice_order, learner

LEARNERS = ("ada", "grace", "linus", "margaret", "ken")


def questions(kind: str | None = None):
    """(bank name, question) for every question of every bank, of `kind` when given."""
    return [(name, q) for name in list_banks() for q in load_bank(name).questions
            if kind in (None, q.kind)]


def chance(qs) -> float:
    """The expected share of questions whose right answer falls on one given trait by luck."""
    return sum(1 / len(q.choices) for _, q in qs) / len(qs)


def test_the_order_is_a_shuffle_stable_for_one_learner_and_different_between_learners():
    for name, question in questions():
        order = choice_order(name, question, "ada")
        assert sorted(order) == list(range(len(question.choices)))
        assert choice_order(name, question, "ada") == order, "a re-run does not reorder"
    differing = sum(choice_order(n, q, "ada") != choice_order(n, q, "grace") for n, q in questions())
    assert differing > len(questions()) / 2, "two learners see most questions in different orders"


def test_the_learner_is_the_workshop_s_name_when_set(monkeypatch):
    monkeypatch.setenv("BACKENDLAB_LEARNER", "learner-07")
    assert learner() == "learner-07"
    monkeypatch.delenv("BACKENDLAB_LEARNER")
    assert learner()


@pytest.mark.parametrize("who", LEARNERS)
def test_the_right_answer_is_spread_over_the_positions_a_learner_sees(who):
    singles = questions("single")
    seen = Counter(choice_order(n, q, who).index(q.correct_indices[0]) for n, q in singles)
    # By luck each position holds about a third of the right answers (3 or 4 choices); a bank
    # shown unshuffled puts them all on one position. Half is far above luck and far below that.
    assert max(seen.values()) <= len(singles) / 2, seen
    assert len(seen) >= 3, seen


@pytest.mark.parametrize("extreme", [max, min], ids=["longest", "shortest"])
def test_the_right_answer_is_the_longest_or_shortest_choice_about_as_often_as_luck(extreme):
    singles = questions("single")
    telling = [q for _, q in singles
               if extreme(range(len(q.choices)), key=lambda i: len(q.choices[i].text))
               == q.correct_indices[0]]
    # Luck: about 0.3 with 3-4 choices. A bank that writes the right answer out more carefully
    # than its distractors scores near 0.8 (44 of 55 single-choice questions did), and one that
    # overcorrects makes the shortest choice the tell.
    assert len(telling) / len(singles) <= chance(singles) + 0.1, [q.id for q in telling]


def test_every_choice_is_explained_in_its_own_words():
    for name, question in questions():
        for choice in question.choices:
            assert choice.explanation != choice.text, (name, question.id, choice.text)
            assert len(choice.explanation.split()) >= 5, (name, question.id, choice.text)


def test_the_widget_shows_the_choices_in_the_learner_s_order_and_grades_the_bank_s(monkeypatch):
    monkeypatch.setenv("BACKENDLAB_LEARNER", "ada")
    name, question = next((n, q) for n, q in questions("single")
                          if choice_order(n, q, "ada")[0] != q.correct_indices[0])
    widget = QuestionWidget(load_bank(name), question, 1)
    shown = [box for box in widget.children if box in widget.inputs]
    assert [widget.inputs.index(box) for box in shown] == list(choice_order(name, question, "ada"))
    first_choice = next(line for line in widget.text().splitlines() if line.startswith("   ( )"))
    assert question.choices[choice_order(name, question, "ada")[0]].text[:20] in first_choice
    widget.inputs[question.correct_indices[0]].value = True
    assert widget.submit().correct
