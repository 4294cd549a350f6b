"""Question banks: one YAML file per topic (`backendlab/topics/<slug>/questions.yaml`, named by the
topic's slug), loaded and validated strictly.

A mistake in a bank (a typo in a field name, a choice without an explanation, a single-choice
question with two right answers) is an error naming the file and the question, raised when the
bank loads, so no learner meets a half-broken quiz and the test suite catches it on every bank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from backendlab import catalog

KINDS = ("single", "multiple")
TAGS = ("predict", "review")
_BANK_FIELDS = {"topic", "title", "questions"}
_QUESTION_FIELDS = {"id", "tags", "kind", "prompt", "choices", "strong_answer"}
_CHOICE_FIELDS = {"text", "correct", "explanation"}
# The quiz adds "(pick all that apply)" to every multiple-choice prompt; a bank must not repeat it.
_HINT = re.compile(r"\b(pick|select|choose|tick)\s+(all|every)\b[^.)]*\bappl(y|ies)\b", re.IGNORECASE)


class QuizError(ValueError):
    """A bank, question or answer that cannot be used; the message says which and what to do.

    IPython shows only the message (no traceback wall) through `_render_traceback_`.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\033[31mQuizError\033[0m: {self}"]


@dataclass(frozen=True)
class Choice:
    """One answer a learner can pick, whether it is right, and why."""

    text: str
    correct: bool
    explanation: str


@dataclass(frozen=True)
class Question:
    """One quiz question: single (exactly one right choice) or multiple (pick all that apply)."""

    id: str
    tags: tuple[str, ...]
    kind: str
    prompt: str
    choices: tuple[Choice, ...]
    strong_answer: str

    @property
    def correct_indices(self) -> tuple[int, ...]:
        return tuple(i for i, choice in enumerate(self.choices) if choice.correct)


@dataclass(frozen=True)
class Bank:
    """The validated questions of one topic; `name` is the topic's slug, e.g. "eventloop" (or the
    file stem of a bank loaded from a path)."""

    name: str
    topic: str
    title: str
    questions: tuple[Question, ...]
    path: Path

    def question(self, question_id: str) -> Question:
        """The question with this id, or a QuizError listing the ids the bank has."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise QuizError(f"bank {self.name!r} has no question {question_id!r}; "
                        f"its questions: {', '.join(q.id for q in self.questions)}")

    def select(self, tag: str | None = None, ids: list[str] | None = None) -> tuple[Question, ...]:
        """The questions with this tag and/or these ids (in the order asked), all when neither."""
        chosen = [self.question(i) for i in ids] if ids is not None else list(self.questions)
        if tag is not None:
            if tag not in TAGS:
                raise QuizError(f"unknown tag {tag!r}; tags are: {', '.join(TAGS)}")
            chosen = [q for q in chosen if tag in q.tags]
        if not chosen:
            raise QuizError(f"bank {self.name!r} has no question matching tag={tag!r} ids={ids!r}")
        return tuple(chosen)


def list_banks() -> list[str]:
    """The names of the suite's banks: the slugs of the topics that have one, in topic order."""
    return [topic.slug for topic in catalog.built() if topic.questions.is_file()]


def load_bank(name: str | Path) -> Bank:
    """The bank of the topic with this slug or number (or the file at this Path), validated; a
    QuizError says what is wrong."""
    if isinstance(name, Path):
        path, bank_name, number = name, name.stem, None
        if not path.is_file():
            raise QuizError(f"no question bank at {path}")
    else:
        try:
            topic = catalog.topic(name)
        except KeyError:
            topic = None
        if topic is None or not topic.questions.is_file():
            raise QuizError(f"no question bank {name!r}; known banks: {', '.join(list_banks())}")
        path, bank_name, number = topic.questions, topic.slug, topic.number
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise QuizError(f"{path}: not valid YAML: {exc}") from None
    return parse_bank(data, path, bank_name, number)


def parse_bank(data: object, path: Path, name: str, number: str | None = None) -> Bank:
    """Validate the parsed YAML of bank `name`; every error names `path` and the question. Its
    `topic` is a quoted two-digit number: `number`, the catalog's, when given."""
    def fail(message: str) -> QuizError:
        return QuizError(f"{path}: {message}")

    if not isinstance(data, dict):
        raise fail("a bank is a mapping with topic, title and questions")
    _check_fields(data, _BANK_FIELDS, fail, "the bank")
    topic, title = data["topic"], data["title"]
    if not isinstance(topic, str) or not re.fullmatch(r"\d\d", topic) or number not in (None, topic):
        expected = f'"{number}", the number of topic {name} in the catalog' if number else \
            'a quoted two-digit number such as "06"'
        raise fail(f"topic must be {expected}, not {topic!r}")
    if not _text(title):
        raise fail("title must be non-empty text")
    if not isinstance(data["questions"], list) or not data["questions"]:
        raise fail("questions must be a non-empty list")
    questions, seen = [], set()
    for number, raw in enumerate(data["questions"], start=1):
        question = _parse_question(raw, number, fail)
        if question.id in seen:
            raise fail(f"question #{number}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    return Bank(name=name, topic=topic, title=title.strip(), questions=tuple(questions),
                path=path)


def _parse_question(raw: object, number: int, fail) -> Question:
    where = f"question #{number}"
    if isinstance(raw, dict) and _text(raw.get("id")):
        where = f"question #{number} ({raw['id']!r})"
    if not isinstance(raw, dict):
        raise fail(f"{where}: a question is a mapping with {', '.join(sorted(_QUESTION_FIELDS))}")
    _check_fields(raw, _QUESTION_FIELDS, fail, where)
    qid, tags, kind = raw["id"], raw["tags"], raw["kind"]
    if not _text(qid) or any(c.isspace() for c in qid):
        raise fail(f"{where}: id must be non-empty text without spaces")
    if not isinstance(tags, list) or not tags or any(t not in TAGS for t in tags):
        raise fail(f"{where}: tags must be a non-empty list of {', '.join(TAGS)}; got {tags!r}")
    if kind not in KINDS:
        raise fail(f"{where}: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    for field in ("prompt", "strong_answer"):
        if not _text(raw[field]):
            raise fail(f"{where}: {field} must be non-empty text")
    if _HINT.search(raw["prompt"]):
        raise fail(f"{where}: the prompt says to pick all that apply; leave that out, the quiz adds "
                   f"it to every multiple-choice question")
    if not isinstance(raw["choices"], list) or len(raw["choices"]) < 2:
        raise fail(f"{where}: choices must be a list of at least two")
    choices = tuple(_parse_choice(c, i, where, fail) for i, c in enumerate(raw["choices"], start=1))
    texts = [c.text for c in choices]
    if len(set(texts)) != len(texts):
        raise fail(f"{where}: two choices have the same text")
    right = sum(c.correct for c in choices)
    if kind == "single" and right != 1:
        raise fail(f"{where}: a single-choice question needs exactly one correct choice, "
                   f"has {right}")
    if kind == "multiple" and right == 0:
        raise fail(f"{where}: no choice is marked correct: true")
    return Question(id=qid, tags=tuple(tags), kind=kind, prompt=raw["prompt"].strip(),
                    choices=choices, strong_answer=raw["strong_answer"].strip())


def _parse_choice(raw: object, number: int, where: str, fail) -> Choice:
    where = f"{where}, choice #{number}"
    if not isinstance(raw, dict):
        raise fail(f"{where}: a choice is a mapping with text, correct and explanation")
    _check_fields(raw, _CHOICE_FIELDS, fail, where)
    if not _text(raw["text"]):
        raise fail(f"{where}: text must be non-empty text")
    if not isinstance(raw["correct"], bool):
        raise fail(f"{where}: correct must be true or false, not {raw['correct']!r}")
    if not _text(raw["explanation"]):
        raise fail(f"{where}: explanation must be non-empty text")
    return Choice(text=raw["text"].strip(), correct=raw["correct"],
                  explanation=raw["explanation"].strip())


def _check_fields(raw: dict, expected: set[str], fail, where: str) -> None:
    unknown = sorted(set(raw) - expected, key=str)
    if unknown:
        raise fail(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; "
                   f"allowed: {', '.join(sorted(expected))}")
    missing = sorted(expected - set(raw))
    if missing:
        raise fail(f"{where}: missing field(s) {', '.join(missing)}")


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
