"""Quiz progress kept between sessions: per question, how often it was answered and answered right.

Stored as JSON in ~/.backendlab/progress.json, or where BACKENDLAB_PROGRESS points (tests point it
at a temp file). Written atomically (temp file, then rename) so a killed kernel cannot leave half a
file. Layout: {"version": 1, "banks": {bank: {question_id: {answered, correct, last_correct,
last_answered}}}}, banks named by their topic's slug; progress recorded under a bank's older name,
its file stem ("06-rate-limiting"), is read as the slug's. From a shell, `backendlab progress`
shows it and `--reset` deletes it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from backendlab import catalog
from backendlab.quiz.bank import QuizError

VERSION = 1


def path() -> Path:
    """The progress file: $BACKENDLAB_PROGRESS, else ~/.backendlab/progress.json."""
    explicit = os.environ.get("BACKENDLAB_PROGRESS")
    return Path(explicit) if explicit else Path.home() / ".backendlab" / "progress.json"


def load() -> dict:
    """All recorded progress as {bank: {question_id: entry}}; empty when nothing is recorded yet."""
    file = path()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise QuizError(f"cannot read quiz progress from {file} ({exc}); "
                        f"delete the file to start over: `backendlab progress --reset`") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise QuizError(f"{file} is not a backendlab progress file (version {VERSION}); "
                        f"delete it to start over: `backendlab progress --reset`")
    return _by_slug(data.get("banks", {}))


def _by_slug(banks: dict) -> dict:
    """`banks` with each bank under its topic's slug: entries under an older name
    ("06-rate-limiting") move to the slug's, whose own entries win where both hold one."""
    older = {name for name in banks if re.fullmatch(r"\d\d-.+", name)}
    merged: dict = {}
    for name in [*sorted(older), *(name for name in banks if name not in older)]:
        try:
            slug = catalog.topic(name[:2]).slug if name in older else name
        except KeyError:
            slug = name
        merged.setdefault(slug, {}).update(banks[name])
    return merged


def record(bank: str, question_id: str, correct: bool) -> dict:
    """Count one answer to a question and return its updated entry."""
    banks = load()
    entry = banks.setdefault(bank, {}).setdefault(question_id, {"answered": 0, "correct": 0})
    entry["answered"] += 1
    entry["correct"] += int(correct)
    entry["last_correct"] = bool(correct)
    entry["last_answered"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    _write(banks)
    return entry


def question(bank: str, question_id: str) -> dict | None:
    """The entry of one question, or None when it was never answered."""
    return load().get(bank, {}).get(question_id)


def reset(bank: str | None = None) -> None:
    """Forget the progress of one bank, or of all banks."""
    banks = load() if bank is not None else {}
    banks.pop(bank, None)
    _write(banks)


def answer_count(banks: dict) -> int:
    """How many answers `banks` (as `load` returns them) records, every retry of a question too."""
    return sum(entry.get("answered", 0) for questions in banks.values()
               for entry in questions.values())


def delete() -> bool:
    """Delete the progress file (`reset` keeps an empty one); False when there was none."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True


def _write(banks: dict) -> None:
    file = path()
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".json", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": VERSION, "banks": banks}, out, indent=1, sort_keys=True)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
