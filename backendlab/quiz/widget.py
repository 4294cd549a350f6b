"""The quiz as ipywidgets: per question, the prompt, its choices, a Check button and the feedback.

Checking grades with the same code as the plain-Python API and records progress. Every choice is a
Checkbox whose label is HTML, so `code` in a choice shows as code; a single-choice question's boxes
are round and exclusive, as radio buttons are. Choices show in the learner's shuffled order
(`backendlab.quiz.order`); `inputs[i]` stays the box of the bank's choice `i`. Long choices wrap
instead of being cut off. Verdicts are `backendlab.marks` badges, not emoji (a browser without an
emoji font shows those as boxes). The CSS classes `backendlab-quiz`, `backendlab-quiz-check` and
`backendlab-quiz-feedback` are what the browser test finds. Without a kernel (a notebook viewed on
GitHub) only text/plain shows, so it is the questions and choices as readable text.
"""

from __future__ import annotations

import html
import re
import textwrap

import ipywidgets as widgets
from IPython import get_ipython
from IPython.display import display

from backendlab.marks import badge
from backendlab.quiz import progress
from backendlab.quiz.bank import Bank, Question, QuizError, load_bank
from backendlab.quiz.grading import Grade, grade_question
from backendlab.quiz.order import choice_order

_WIDE = widgets.Layout(width="auto")
_STYLE = """<style>
.backendlab-quiz .widget-html-content { line-height: 1.5; }
.backendlab-quiz .widget-checkbox { height: auto; }
.backendlab-quiz .widget-checkbox .widget-label-basic {
  height: auto; line-height: 1.4; padding: 3px 0; white-space: normal; overflow: visible;
  display: flex; align-items: flex-start;
}
.backendlab-quiz .widget-checkbox input { flex-shrink: 0; height: 1.4em; }
.backendlab-quiz-single .widget-checkbox input {
  appearance: none; width: 1em; height: 1em; margin: 0.2em 0.5em 0 0.15em; border-radius: 50%;
  border: 1px solid var(--jp-border-color1, #888); background: var(--jp-layout-color0, #fff);
}
.backendlab-quiz-single .widget-checkbox input:checked {
  border-color: var(--jp-brand-color1, #1976d2);
  background: radial-gradient(var(--jp-brand-color1, #1976d2) 45%, transparent 50%);
}
.backendlab-quiz-question { margin-bottom: 1em; }
</style>"""


def show_quiz(bank_name: str, tag: str | None = None, ids: list[str] | None = None) -> "QuizWidget":
    """Display questions of a bank (all, those with `tag`, or those in `ids`) and return them."""
    bank = load_bank(bank_name)
    quiz = QuizWidget(bank, bank.select(tag=tag, ids=ids))
    display(quiz)
    quiz.skip_next_display()
    return quiz


class QuestionWidget(widgets.VBox):
    """One question: its choices, in the learner's order, as round exclusive boxes (single) or
    checkboxes (multiple), Check, and feedback."""

    def __init__(self, bank: Bank, question: Question, number: int) -> None:
        self.bank, self.question, self.number = bank, question, number
        self.order = choice_order(bank.name, question)
        hint = " <i>(pick all that apply)</i>" if question.kind == "multiple" else ""
        prompt = widgets.HTML(f"<b>{number}.</b> {_inline(question.prompt)}{hint}")
        self.inputs = [widgets.Checkbox(value=False, description=_inline(c.text),
                                        description_allow_html=True, indent=False, layout=_WIDE)
                       for c in question.choices]
        if question.kind == "single":
            for box in self.inputs:
                box.observe(self._keep_one, names="value")
        self.check = widgets.Button(description="Check", button_style="primary")
        self.check.add_class("backendlab-quiz-check")
        self.feedback = widgets.HTML()
        self.feedback.add_class("backendlab-quiz-feedback")
        self.check.on_click(lambda _: self.submit())
        shown = [self.inputs[i] for i in self.order]
        super().__init__([prompt, *shown, self.check, self.feedback])
        self.add_class("backendlab-quiz-question")
        if question.kind == "single":
            self.add_class("backendlab-quiz-single")

    def _keep_one(self, change) -> None:
        """A single-choice question: ticking one choice unticks the others, as radio buttons do."""
        if change["new"]:
            for box in self.inputs:
                if box is not change["owner"]:
                    box.value = False

    def selected(self) -> list[int]:
        """The indices of the choices ticked right now."""
        return [i for i, box in enumerate(self.inputs) if box.value]

    def submit(self) -> Grade | None:
        """Grade the selection, show the feedback and record progress (None if nothing ticked)."""
        chosen = self.selected()
        if not chosen:
            self.feedback.value = "<p>Pick an answer first, then press Check.</p>"
            return None
        result = grade_question(self.question, chosen)
        note = ""
        try:
            progress.record(self.bank.name, self.question.id, result.correct)
        except (QuizError, OSError) as exc:
            note = f"<p><i>Progress not saved: {html.escape(str(exc))}</i></p>"
        self.feedback.value = _feedback_html(result) + note
        return result

    def text(self) -> str:
        """The question and its choices as plain text (nothing reveals the answer)."""
        box = "( )" if self.question.kind == "single" else "[ ]"
        hint = " (pick all that apply)" if self.question.kind == "multiple" else ""
        lines = [textwrap.fill(f"{self.number}. {self.question.prompt}{hint}", 100,
                               subsequent_indent="   ")]
        lines += [textwrap.fill(f"{box} {c.text}", 100, initial_indent="   ",
                                subsequent_indent="       ")
                  for c in (self.question.choices[i] for i in self.order)]
        return "\n".join(lines)


class QuizWidget(widgets.VBox):
    """Some questions of one bank under a title; its text/plain form is the questions as text."""

    def __init__(self, bank: Bank, questions: tuple[Question, ...]) -> None:
        self.bank = bank
        self.questions = [QuestionWidget(bank, q, n) for n, q in enumerate(questions, start=1)]
        title = widgets.HTML(f"{_STYLE}<h4>Quiz: {html.escape(bank.title)}</h4>")
        super().__init__([title, *self.questions])
        self.add_class("backendlab-quiz")
        self._skip_in_cell: int | None = None

    def __repr__(self) -> str:
        count = len(self.questions)
        head = (f"Quiz {self.bank.topic} — {self.bank.title} ({count} question"
                f"{'s' if count != 1 else ''}; run the notebook in JupyterLab to answer)")
        return "\n\n".join([head, *(q.text() for q in self.questions)])

    def _repr_mimebundle_(self, **kwargs) -> dict:
        return {**super()._repr_mimebundle_(**kwargs), "text/plain": repr(self)}

    def skip_next_display(self) -> None:
        """Keep the cell's result from showing the quiz again when show_quiz(...) ends the cell."""
        shell = get_ipython()
        self._skip_in_cell = shell.execution_count if shell is not None else None

    def _ipython_display_(self) -> None:
        shell = get_ipython()
        if shell is not None and self._skip_in_cell == shell.execution_count:
            self._skip_in_cell = None
            return
        display(self._repr_mimebundle_(), raw=True)


def _feedback_html(result: Grade) -> str:
    """The verdict, each chosen choice marked right or wrong with why, missed right ones, the
    strong answer."""
    verdict = badge("right", "Correct.") if result.correct else badge("wrong", "Not quite.")
    items = []
    for n, item in enumerate(result.feedback):
        if n >= len(result.chosen):
            mark = badge("missed", "missed")
        else:
            mark = badge("right", "right") if item.correct else badge("wrong", "wrong")
        items.append(f"<li>{mark} <b>{_inline(item.text)}</b> — {_inline(item.explanation)}</li>")
    return (f"<p>{verdict}</p><ul>{''.join(items)}</ul>"
            f"<p><b>Strong answer:</b> {_inline(result.strong_answer)}</p>")


def _inline(text: str) -> str:
    """Text as HTML, with `backticks` shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
