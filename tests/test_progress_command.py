"""`backendlab progress`: prints where quiz progress lives and the standing per bank, prints the
path alone for scripts, and deletes the file only when the learner says yes (or passes --yes)."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backendlab.__main__ import main
from backendlab.quiz import progress
from backendlab.quiz.bank import list_banks, load_bank

BANK = "ratelimit"


@pytest.fixture
def progress_file(tmp_path, monkeypatch) -> Path:
    file = tmp_path / "progress" / "progress.json"
    monkeypatch.setenv("BACKENDLAB_PROGRESS", str(file))
    return file


@pytest.fixture
def answered(progress_file) -> Path:
    """Three answers recorded: one question answered twice, another once."""
    first, second = [q.id for q in load_bank(BANK).questions[:2]]
    for question_id, correct in ((first, False), (first, True), (second, True)):
        progress.record(BANK, question_id, correct)
    return progress_file


def run(capsys, monkeypatch, *argv: str, stdin: str | None = None):
    """main(["progress", *argv]) with `stdin` as its input (None: stdin at end of file)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
    code = main(["progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_it_prints_the_path_and_a_line_per_bank(answered, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch)
    lines = out.splitlines()
    assert (code, err, lines[0]) == (0, "", f"Quiz progress: {answered}")
    assert len(lines) == 1 + len(list_banks())
    title, size = load_bank(BANK).title, len(load_bank(BANK).questions)
    assert f"{title}: answered 2/{size}, right last time 2" in lines


def test_with_nothing_recorded_it_says_so(progress_file, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch)
    assert code == 0 and out.startswith(f"Quiz progress: {progress_file} (nothing recorded yet)\n")
    assert not progress_file.exists()


def test_path_prints_only_the_path(progress_file, capsys, monkeypatch):
    assert run(capsys, monkeypatch, "--path") == (0, f"{progress_file}\n", "")


def test_the_default_path_is_in_home(monkeypatch, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("BACKENDLAB_PROGRESS")
    done = subprocess.run([str(Path(sys.executable).parent / "backendlab"), "progress", "--path"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (0, f"{tmp_path}/.backendlab/progress.json\n")


@pytest.mark.parametrize("answer", ["y\n", "YES\n", " yes \n"])
def test_reset_deletes_the_file_when_the_learner_says_yes(answered, capsys, monkeypatch, answer):
    code, out, _ = run(capsys, monkeypatch, "--reset", stdin=answer)
    assert code == 0 and not answered.exists()
    assert out == (f"Delete quiz progress in {answered} (3 answers)? [y/N] "
                   f"Deleted quiz progress in {answered} (3 answers).\n")


@pytest.mark.parametrize("answer", ["\n", "n\n", "no\n", "yep\n"])
def test_reset_keeps_the_file_on_any_other_answer(answered, capsys, monkeypatch, answer):
    before = answered.read_text()
    code, out, _ = run(capsys, monkeypatch, "--reset", stdin=answer)
    assert code == 0 and out.endswith(f"Kept {answered}.\n") and answered.read_text() == before


def test_reset_without_an_answer_keeps_the_file_and_says_how(answered, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "--reset")
    assert code == 1 and answered.exists()
    assert err == (f"error: no answer on stdin, so {answered} is kept; pass --yes to delete it "
                   "without asking\n")


def test_yes_deletes_without_asking(answered, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "--reset", "--yes")
    assert (code, out) == (0, f"Deleted quiz progress in {answered} (3 answers).\n")
    assert not answered.exists()


def test_nothing_to_reset_is_said_and_is_not_an_error(progress_file, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "--reset")
    assert (code, out) == (0, f"No quiz progress to reset: {progress_file} does not exist.\n")


def test_one_answer_is_singular(progress_file, capsys, monkeypatch):
    progress.record(BANK, load_bank(BANK).questions[0].id, True)
    _, out, _ = run(capsys, monkeypatch, "--reset", "--yes")
    assert "(1 answer)" in out


def test_an_unreadable_file_is_one_error_line_and_can_be_reset(progress_file, capsys,
                                                               monkeypatch):
    progress_file.parent.mkdir(parents=True)
    progress_file.write_text(json.dumps({"version": 99}))
    code, out, err = run(capsys, monkeypatch)
    assert (code, out) == (1, f"Quiz progress: {progress_file}\n")
    assert err.startswith("error: ") and "backendlab progress --reset" in err
    assert len(err.splitlines()) == 1
    code, out, _ = run(capsys, monkeypatch, "--reset", stdin="y\n")
    assert code == 0 and "(unreadable)? [y/N]" in out and not progress_file.exists()


@pytest.mark.parametrize("argv, message", [
    (["--yes"], "--yes goes with --reset"),
    (["--path", "--reset"], "not allowed with argument --path"),
    (["--nope"], "unrecognized arguments: --nope"),
])
def test_bad_options_get_a_usage_error(progress_file, capsys, monkeypatch, argv, message):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, monkeypatch, *argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
