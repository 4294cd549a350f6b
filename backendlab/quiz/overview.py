"""Where a learner stands: per question bank, how many questions were answered and got right.

Notebook 00 shows it; the mock interview (topic 11) will use it to pick weak topics.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from backendlab.quiz import progress
from backendlab.quiz.bank import list_banks, load_bank


@dataclass(frozen=True)
class BankProgress:
    """One bank's standing: its size, the questions ever answered, those whose last answer was right."""

    bank: str
    title: str
    questions: int
    answered: int
    right_last_time: int


def overview() -> "ProgressOverview":
    """The standing of every bank in the package, from the progress file."""
    recorded = progress.load()
    rows = []
    for name in list_banks():
        bank = load_bank(name)
        ids = {q.id for q in bank.questions}
        entries = {qid: entry for qid, entry in recorded.get(name, {}).items() if qid in ids}
        rows.append(BankProgress(name, bank.title, len(ids), len(entries),
                                 sum(1 for entry in entries.values() if entry.get("last_correct"))))
    return ProgressOverview(rows)


class ProgressOverview:
    """The overview as a table: HTML in a notebook, text in a terminal."""

    def __init__(self, rows: list[BankProgress]):
        self.rows = rows

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td>{html.escape(r.title)}</td><td>{r.answered} / {r.questions}</td>"
            f"<td>{r.right_last_time}</td></tr>" for r in self.rows)
        return ("<table><thead><tr><th>quiz</th><th>answered</th><th>right last time</th></tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def __repr__(self) -> str:
        return "\n".join(f"{r.title}: answered {r.answered}/{r.questions}, right last time {r.right_last_time}"
                         for r in self.rows)
