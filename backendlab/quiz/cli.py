"""`backendlab progress`: where quiz progress is kept, where a learner stands, and a fresh start.

    backendlab progress                 the progress file's path, then answered / right per bank
    backendlab progress --path          the path only (for scripts that back it up or move it)
    backendlab progress --reset [--yes] delete the file, after asking unless --yes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backendlab.quiz import progress
from backendlab.quiz.bank import QuizError
from backendlab.quiz.overview import overview


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backendlab progress",
        description="Quiz progress: where it is kept (BACKENDLAB_PROGRESS, else "
                    "~/.backendlab/progress.json) and the answers recorded per quiz.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--path", action="store_true", help="print only the progress file's path")
    action.add_argument("--reset", action="store_true",
                        help="delete the progress file, after asking")
    parser.add_argument("--yes", action="store_true", help="with --reset: delete without asking")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.yes and not args.reset:
        parser.error("--yes goes with --reset")
    if args.path:
        print(progress.path())
        return 0
    return _reset(ask=not args.yes) if args.reset else _show()


def _show() -> int:
    """The path, then one line per quiz bank; an unreadable file is one error line."""
    file = progress.path()
    try:
        table = overview()
    except QuizError as exc:
        print(f"Quiz progress: {file}")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Quiz progress: {file}" + ("" if file.exists() else " (nothing recorded yet)"))
    print(repr(table))
    return 0


def _size() -> str:
    """'12 answers', or 'unreadable' for a file that is not progress (it can be deleted anyway)."""
    try:
        count = progress.answer_count(progress.load())
    except QuizError:
        return "unreadable"
    return f"{count} answer{'' if count == 1 else 's'}"


def _confirmed(question: str) -> bool | None:
    """True for y or yes on stdin, False for any other answer, None when stdin gives none."""
    try:
        return input(question).strip().lower() in {"y", "yes"}
    except (EOFError, KeyboardInterrupt):
        print()
        return None


def _reset(ask: bool) -> int:
    """Delete the progress file once the learner agrees; nothing to delete is not an error."""
    file = progress.path()
    if not file.exists():
        print(f"No quiz progress to reset: {file} does not exist.")
        return 0
    size = _size()
    agreed = _confirmed(f"Delete quiz progress in {file} ({size})? [y/N] ") if ask else True
    if agreed is None:
        print(f"error: no answer on stdin, so {file} is kept; pass --yes to delete it without "
              "asking", file=sys.stderr)
        return 1
    if not agreed:
        print(f"Kept {file}.")
        return 0
    return _delete(file, size)


def _delete(file: Path, size: str) -> int:
    try:
        progress.delete()
    except OSError as exc:
        print(f"error: cannot delete {file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Deleted quiz progress in {file} ({size}).")
    return 0
