"""The check framework: verdicts and hints, the Report, the runner every lab's check() uses
(`only=`, teardown), one-line errors, and which functions can be shipped to a child process."""

import math
from codecs import getincrementaldecoder
from collections import Counter as Tally
import pytest

from backendlab.checks import (Check, CheckFailed, describe_error, run_checks, run_lab, select,
                               trial, within)
from backendlab.checks.child import function_module
from helpers.solutions import import_file

LIMIT = 2
SETTINGS = {"limit": 2}


# The framework

def saw(value):
    return f"saw {value}"


def hints(value):
    raise CheckFailed("do the other thing")


def asserts(value):
    if value != 2:
        raise AssertionError("value should be 2")


def crashes(value):
    return {}[value]


def test_run_checks_reports_each_verdict_with_its_hint():
    suite = [Check("a", saw), Check("b", hints), Check("c", asserts), Check("d", crashes)]
    report = run_checks(suite, 1, title="demo")
    assert [(r.name, r.passed, r.message) for r in report.results] == [
        ("a", True, "saw 1"), ("b", False, "do the other thing"), ("c", False, "value should be 2"),
        ("d", False, "KeyError: 1")]
    assert not report.passed
    assert str(report) == ("demo: 1 of 4 checks passed\n  pass  a: saw 1\n  FAIL  b: do the other "
                           "thing\n  FAIL  c: value should be 2\n  FAIL  d: KeyError: 1")
    assert repr(report) == str(report)
    with pytest.raises(AssertionError, match="demo: 1 of 4 checks passed"):
        report.raise_if_failed()
    assert run_checks(suite[:1], 2).raise_if_failed().passed


def test_a_report_renders_as_an_escaped_html_table():
    page = run_checks([Check("x < y", saw)], "<script>")._repr_html_()
    assert "<table>" in page and 'class="backendlab-badge right"' in page and "x &lt; y" in page and "saw &lt;script&gt;" in page
    assert "<script>" not in page


class Recorder:
    """A lab that notes which checks ran on it and whether it was closed."""

    def __init__(self):
        self.ran, self.closed = [], False

    def close(self):
        self.closed = True


def noting(name, outcome=None):
    def run(lab):
        lab.ran.append(name)
        if outcome is not None:
            raise outcome
        return f"{name} ran"
    return Check(name, run)


SUITE = [noting("first"), noting("second", CheckFailed("fix the second")), noting("third")]


def test_run_lab_runs_every_check_on_the_lab_it_sets_up_then_closes_it():
    labs = []
    report = run_lab("Lab 99: demo", SUITE, lambda: labs.append(Recorder()) or labs[-1])
    (lab,) = labs
    assert lab.ran == ["first", "second", "third"] and lab.closed
    assert report.summary == "Lab 99: demo: 2 of 3 checks passed"
    assert [(r.name, r.passed, r.message) for r in report.results] == [
        ("first", True, "first ran"), ("second", False, "fix the second"), ("third", True, "third ran")]


def test_only_runs_the_named_checks_in_the_suites_order():
    lab = Recorder()
    report = run_lab("demo", SUITE, lambda: lab, only=["third", "first"])
    assert lab.ran == ["first", "third"] and [r.name for r in report.results] == ["first", "third"]
    assert report.passed and report.summary == "demo: 2 of 2 checks passed"
    lab = Recorder()
    assert [r.name for r in run_lab("demo", SUITE, lambda: lab, only="second").results] == ["second"]


@pytest.mark.parametrize("only", [["first", "fourth"], "fourth", []])
def test_an_unknown_name_is_refused_with_the_names_before_anything_is_set_up(only):
    set_up = []
    with pytest.raises(ValueError) as refused:
        run_lab("demo", SUITE, lambda: set_up.append(Recorder()), only=only)
    assert str(refused.value).startswith("no check named ")
    assert str(refused.value).endswith("the checks are: 'first', 'second', 'third'")
    assert "'fourth'" in str(refused.value) or not only
    assert set_up == []
    assert select(SUITE, None) == SUITE


def test_the_lab_is_closed_when_a_check_crashes_or_is_interrupted():
    lab = Recorder()
    suite = [noting("crashes", KeyError("k")), noting("after")]
    report = run_lab("demo", suite, lambda: lab)
    assert lab.closed and lab.ran == ["crashes", "after"]
    assert [r.message for r in report.results] == ["KeyError: 'k'", "after ran"]
    lab = Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_lab("demo", [noting("interrupted", KeyboardInterrupt()), noting("never")], lambda: lab)
    assert lab.closed and lab.ran == ["interrupted"]


def test_a_trial_prints_a_hint_as_one_line_and_closes_the_lab(capsys):
    with trial(Recorder()) as lab:
        print("trying")
        raise CheckFailed("write it first")
    assert lab.closed and capsys.readouterr().out == "trying\nFAIL: write it first\n"
    with pytest.raises(KeyError), trial(Recorder()) as lab:
        raise KeyError("not a verdict")
    assert lab.closed


def test_within_notes_the_measure_and_its_limit_or_fails_with_the_advice():
    assert within("took 3 ms", 3, 5, "5 ms", "go faster") == "took 3 ms (limit 5 ms)"
    with pytest.raises(CheckFailed, match="^took 8 ms, limit 5 ms: go faster$"):
        within("took 8 ms", 8, 5, "5 ms", "go faster")


def test_describe_error_gives_one_line_and_the_line_of_the_function():
    def broken(value):
        total = value + 1
        raise ValueError(f"first {total}\nsecond")

    with pytest.raises(ValueError) as caught:
        broken(0)
    assert describe_error(caught.value, broken) == "ValueError: first 1 second (line 3 of broken)"
    assert describe_error(KeyError()) == "KeyError"


def uses_globals(rows):
    decoder = getincrementaldecoder("utf-8")()
    return [math.floor(r) for r in Tally(rows)][:LIMIT], decoder.decode(b"ok")


def uses_settings(rows):
    return rows[:SETTINGS["limit"]]


def uses_undefined(rows):
    return undefined_helper(rows)  # noqa: F821


def test_function_module_carries_modules_library_objects_and_literals(tmp_path):
    source = function_module(uses_globals)
    assert source.splitlines()[:4] == ["LIMIT = 2", "from collections import Counter as Tally",
                                       "from codecs import getincrementaldecoder", "import math"]
    path = tmp_path / "shipped.py"
    path.write_text(source)
    assert import_file(path, "shipped").uses_globals([1.5, 2.5, 3.5]) == ([1, 2], "ok")


def test_function_module_says_what_cannot_travel():
    with pytest.raises(CheckFailed, match="uses `SETTINGS` from elsewhere in the notebook.*define "
                                          "`SETTINGS` inside uses_settings"):
        function_module(uses_settings)
    with pytest.raises(CheckFailed, match="uses `undefined_helper`, which is not defined"):
        function_module(uses_undefined)
    with pytest.raises(CheckFailed, match="cannot read the source of len"):
        function_module(len)


def test_marks_are_words_on_colours_in_any_font():
    from backendlab import marks

    shown = marks.badge("wrong", "fail <now>")
    assert shown.startswith('<span class="backendlab-badge wrong" style="') and "#c62828" in shown
    assert ">fail &lt;now&gt;</span>" in shown
    assert (marks.verdict(True), marks.verdict(False)) == ("pass", "FAIL")
