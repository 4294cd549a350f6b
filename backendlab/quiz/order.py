"""The order a learner sees a question's choices in: shuffled per learner and per question, and the
same on every run, so the right answer's place gives nothing away and a re-run does not reorder.

The learner is `BACKENDLAB_LEARNER` when set (a workshop sets one per learner), else the login
name; the shuffle is seeded by learner, bank and question id, so it needs no stored state and a
test run is deterministic.
"""

from __future__ import annotations

import getpass
import os
import random

from backendlab.quiz.bank import Question


def learner() -> str:
    """Who is answering: $BACKENDLAB_LEARNER, else the login name (else the user id)."""
    explicit = os.environ.get("BACKENDLAB_LEARNER", "").strip()
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def choice_order(bank_name: str, question: Question, who: str | None = None) -> tuple[int, ...]:
    """The indices of `question`'s choices in the order learner `who` (default: this one) sees them."""
    order = list(range(len(question.choices)))
    random.Random(f"{who or learner()}/{bank_name}/{question.id}").shuffle(order)
    return tuple(order)
