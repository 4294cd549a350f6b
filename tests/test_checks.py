"""The check framework: verdicts and hints, the Report, one-line errors, and which functions can be
shipped to a child process."""

import math
from codecs import getincrementaldecoder
from collections import Counter as Tally
import pytest

from backendlab.checks import Check, CheckFailed, describe_error, function_module, run_checks
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
