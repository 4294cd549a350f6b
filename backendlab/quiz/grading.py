"""Grading in plain Python: the widget, the tests and the mock interview all grade the same way.

An answer is correct when the chosen choices are exactly the correct ones. Feedback explains every
chosen choice and every correct choice that was missed, so a learner sees why, not only whether.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from backendlab.quiz.bank import Question, QuizError, load_bank


class Feedback(NamedTuple):
    """One explained choice: its text, whether it is a correct choice, and why."""

    text: str
    correct: bool
    explanation: str


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer; `feedback` lists the chosen choices, then missed right ones."""

    question_id: str
    correct: bool
    chosen: tuple[int, ...]
    missed: tuple[int, ...]
    feedback: list[Feedback]
    strong_answer: str


def grade(bank_name: str, question_id: str, chosen) -> Grade:
    """Grade `chosen` (choice indices or texts, or one of them) for a question of a bank."""
    return grade_question(load_bank(bank_name).question(question_id), chosen)


def grade_question(question: Question, chosen) -> Grade:
    """Grade `chosen` (choice indices or texts, or one of them) for a loaded question."""
    picked = _indices(question, chosen)
    right = set(question.correct_indices)
    missed = tuple(i for i in question.correct_indices if i not in picked)
    feedback = [Feedback(question.choices[i].text, question.choices[i].correct,
                         question.choices[i].explanation) for i in (*picked, *missed)]
    return Grade(question_id=question.id, correct=set(picked) == right, chosen=picked,
                 missed=missed, feedback=feedback, strong_answer=question.strong_answer)


def _indices(question: Question, chosen) -> tuple[int, ...]:
    """The chosen choices as sorted indices; a QuizError for anything that is not one of them."""
    items = [chosen] if isinstance(chosen, (int, str)) else list(chosen)
    texts = [c.text for c in question.choices]
    picked = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise QuizError(f"an answer is a choice index or a choice text, not {item!r}")
        if isinstance(item, str):
            if item.strip() not in texts:
                raise QuizError(f"{item!r} is not a choice of {question.id!r}; choices: "
                                + "; ".join(f"{i}: {t}" for i, t in enumerate(texts)))
            item = texts.index(item.strip())
        if not 0 <= item < len(texts):
            raise QuizError(f"choice index {item} is out of range for {question.id!r} "
                            f"(0 to {len(texts) - 1})")
        picked.add(item)
    if not picked:
        raise QuizError(f"no choice given for {question.id!r}: pick at least one")
    if question.kind == "single" and len(picked) > 1:
        raise QuizError(f"{question.id!r} is a single-choice question: pick one choice, "
                        f"not {len(picked)}")
    return tuple(sorted(picked))
