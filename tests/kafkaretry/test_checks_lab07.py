"""Lab 07's checks against the test broker: the worked solution passes them all and leaves nothing
behind, the generated lab's stub fails each one saying it is not written yet, and each typical
wrong answer fails the checks aimed at it (and only those) with a hint that says what to change."""

import tempfile
from pathlib import Path

import nbformat
import pytest
import redis

from backendlab import labs, processes
from backendlab.checks.child import function_module
from backendlab.topics.kafkaretry import checks as lab07
from backendlab.topics.kafkaretry.checks.scenario import make_message, producing
from backendlab.topics.kafkaretry.checks.suite import LATENCY_LIMIT_MS, p90
from backendlab.coroutines import run_coroutine
from backendlab.topics.kafkaretry import RetryRouter, list_topics, run_topics
from backendlab.services.redis import redis_url, service as redis_service
from conftest import kafka_for_tests, use_redis_engine
from helpers.solutions import PROJECT, import_file

SOLUTION = PROJECT / "solutions" / "07-kafka-retries.ipynb"
IN_PROCESS = [check.name for check in lab07.SUITE[:6]]
CRASH = [check.name for check in lab07.SUITE[6:]]
HEALTHY, FATAL, TRANSIENT, DUE, RECOVERS, NOT_HELD, LOSES, DUPLICATES = (
    check.name for check in lab07.SUITE)


@pytest.fixture(scope="module")
def broker():
    """The test broker; the checks find the embedded Redis (redis-server) beside it."""
    with kafka_for_tests() as bootstrap:
        redis_service.stop()
        try:
            yield bootstrap
        finally:
            redis_service.stop()


@pytest.fixture(params=["real"])
def redis_engine(request, broker):
    """The checks' Redis on this machine's real one (test_lab_proofs runs the solution notebook on
    the embedded one); the broker stays embedded (its address is resolved)."""
    with pytest.MonkeyPatch.context() as patch:
        redis_service.stop()
        patch.delenv("BACKENDLAB_EMBEDDED")
        use_redis_engine(patch, request.param, redis_service)
        try:
            redis_service.address()
            yield request.param
        finally:
            redis_service.stop()


def cell_with(nb, text: str) -> str:
    (source,) = [cell.source for cell in nb.cells if cell.cell_type == "code" and text in cell.source]
    return source


def module_of(source: str, folder: Path, name: str):
    path = folder / f"{name}.py"
    path.write_text(source)
    return import_file(path, name)


def solution_variant(folder: Path, name: str, *edits: tuple[str, str]):
    """The solution's `process` with each (old, new) edit made to its cell."""
    source = cell_with(nbformat.read(SOLUTION, as_version=4), "### BEGIN SOLUTION")
    for old, new in edits:
        assert old in source, f"the solution no longer has {old!r}"
        source = source.replace(old, new)
    return module_of(source, folder, name).process


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    return solution_variant(tmp_path_factory.mktemp("lab07"), "solution_07")


def leftovers(bootstrap: str, temp: Path) -> tuple[list, list, list]:
    """Topics, Redis keys and temp folders (in `temp`) that lab 07's checks made and did not
    remove."""
    topics = sorted(t for t in run_coroutine(list_topics(bootstrap)) if t.startswith("lab07"))
    client = redis.Redis.from_url(redis_url())
    keys = list(client.scan_iter(match="backendlab:lab07:*"))
    client.close()
    return topics, keys, sorted(temp.glob("backendlab-lab07-*"))


def test_the_solution_passes_every_check_and_leaves_nothing_behind(broker, redis_engine, solution,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # apart from other runs' folders
    running = processes.running()
    report = lab07.check(solution)
    assert report.passed, str(report)
    assert len(report.results) == len(lab07.SUITE)
    assert leftovers(broker, tmp_path) == ([], [], [])
    assert processes.running() == running


def test_the_generated_lab_fails_every_check_saying_it_is_not_written(broker, tmp_path, capsys):
    stub = module_of(cell_with(labs.generate(SOLUTION), "async def process"), tmp_path, "lab_07")
    report = lab07.check(stub.process)
    assert not any(result.passed for result in report.results), str(report)
    for result in report.results:
        assert result.message.endswith(
            "process is not written yet (write process: see the task above)"), result.message
    lab07.try_it(stub.process)
    assert capsys.readouterr().out == (
        "FAIL: process is not written yet (write process: see the task above)\n")


SLEEPS = ("        topic, meta = next_copy(record, exc, lab)\n",
          "        topic, meta = next_copy(record, exc, lab)\n"
          "        if meta.due_ms:\n"
          "            await asyncio.sleep((meta.due_ms - lab.now_ms()) / 1000)\n")
EVERYTHING_TRANSIENT = ('"transient" if isinstance(exc, (ConnectionError, TimeoutError)) else '
                        '"fatal"', '"transient"')
COUNTS_FROM_ZERO = [("attempts=1, first_seen_ms=now", "attempts=0, first_seen_ms=now"),
                    ("meta.attempts >= lab.max_attempts", "meta.attempts + 1 >= lab.max_attempts"),
                    ("lab.topics.retry(meta.attempts), replace(meta, due_ms=now + "
                     "lab.delay_ms(meta.attempts))",
                     "lab.topics.retry(meta.attempts + 1), replace(meta, due_ms=now + "
                     "lab.delay_ms(meta.attempts + 1))")]
NO_BACKOFF = ("due_ms=now + lab.delay_ms(meta.attempts)", "due_ms=now")

WRONG = {
    "sleeps-for-the-backoff": ([("import json\n", "import asyncio\nimport json\n"), SLEEPS],
                               {NOT_HELD: "do not sleep in process"}),
    "retries-fatal-errors": ([EVERYTHING_TRANSIENT],
                             {FATAL: "the unknown-type event went to lab.topics.retry(1): a "
                                     "ValueError, KeyError or JSON error fails the same way"}),
    "counts-attempts-from-zero": (COUNTS_FROM_ZERO, {
        FATAL: "says x-retry-attempts 0, but 1 attempt failed: count every attempt made so far",
        TRANSIENT: "lab.topics.retry(1) says x-retry-attempts 0, but 1 attempt failed"}),
    "no-backoff": ([NO_BACKOFF], {
        TRANSIENT: "it must be due lab.delay_ms(1) = 800 ms after the failure",
        DUE: "attempt 2 of the always-failing event ran"}),
}


@pytest.mark.parametrize("name", WRONG)
def test_a_typical_mistake_fails_the_checks_aimed_at_it(broker, tmp_path, name):
    edits, failing = WRONG[name]
    report = lab07.check(solution_variant(tmp_path, name.replace("-", "_"), *edits),
                         only=IN_PROCESS)
    failed = {result.name: result.message for result in report.results if not result.passed}
    assert set(failed) == set(failing), str(report)
    for check, hint in failing.items():
        assert hint in failed[check], failed[check]


COMMITS_FIRST = [("    await lab.commit(record)\n    ### END", "    ### END"),
                 ("    try:\n        await deliver_once",
                  "    await lab.commit(record)\n    try:\n        await deliver_once")]
COMMITS_BEFORE_PUBLISHING = [
    ("        topic, meta = next_copy(record, exc, lab)\n",
     "        topic, meta = next_copy(record, exc, lab)\n        await lab.commit(record)\n"),
    ("headers=with_metadata(record.headers, meta))\n",
     "headers=with_metadata(record.headers, meta))\n        return\n")]
NO_DEDUPE = [("    if lab.redis.exists(done):\n        return\n", "")]
RETRIES_INLINE = [("        await deliver_once(json.loads(record.value), lab)\n    except",
                   "        while True:\n"
                   "            try:\n"
                   "                await deliver_once(json.loads(record.value), lab)\n"
                   "                break\n"
                   "            except ConnectionError:\n"
                   "                pass\n"
                   "    except")]
LOST_C2 = ("c-2 never delivered after the consumer was killed (just before a retry copy's send, "
           "then just after a retry copy was acknowledged, before its record's commit, then just "
           "before a source record's commit) and restarted from its committed offset: commit a "
           "record last")
DELIVERED_TWICE = ("c-2 was delivered 2 times: after a crash, Kafka delivers again every record "
                   "after the last commit, and a copy acknowledged before the crash stays in its "
                   "retry topic; remember delivered ids in Redis")
NEVER_SENDS = ("the check could not kill your consumer just before a retry copy's send: c-2's "
               "first attempt fails with a ConnectionError, so copy it to lab.topics.retry(1)")

CRASH_WRONG = {
    "commits-before-delivering": (COMMITS_FIRST, {LOSES: LOST_C2}),
    "commits-before-publishing-the-copy": (COMMITS_BEFORE_PUBLISHING, {LOSES: LOST_C2}),
    "no-dedupe": (NO_DEDUPE, {DUPLICATES: DELIVERED_TWICE}),
    "retries-inline": (RETRIES_INLINE, {LOSES: NEVER_SENDS, DUPLICATES: NEVER_SENDS}),
}


@pytest.mark.parametrize("name", CRASH_WRONG)
def test_a_crash_finds_a_lost_or_a_duplicate_event(broker, tmp_path, name):
    edits, failing = CRASH_WRONG[name]
    report = lab07.check(solution_variant(tmp_path, "crashed", *edits), only=CRASH)
    failed = {result.name: result.message for result in report.results if not result.passed}
    assert set(failed) == set(failing), str(report)
    for check, hint in failing.items():
        assert hint in failed[check], failed[check]


def test_one_delayed_healthy_event_does_not_fail_the_latency_check():
    assert p90([8.0] * 29 + [5000.0]) < LATENCY_LIMIT_MS


def test_the_scenario_stops_its_sends_when_the_run_fails(broker):
    messages = [make_message(f"h-{n}", "healthy", {"id": f"h-{n}"}, "k", "t")
                for n in range(20)]

    async def fail_while_producing():
        async with run_topics(broker, "lab07", retries=0) as topics:
            with pytest.raises(RuntimeError):
                async with producing(broker, topics.source, messages) as production:
                    raise RuntimeError("the run failed")
            return production.done()

    assert run_coroutine(fail_while_producing())
    assert messages[-1].offset == -1


def sync_process(record, lab):
    return None


async def routes_with_the_kit(record, lab):
    return RetryRouter


TRANSIENT_TYPES = (ConnectionError, TimeoutError)


def is_transient(exc):
    return isinstance(exc, TRANSIENT_TYPES)


async def uses_a_tuple(record, lab):
    return is_transient(None)


@pytest.mark.parametrize("fn, hint", [
    (sync_process, "pass your `async def sync_process(record, lab)` function itself"),
    (routes_with_the_kit, "routes_with_the_kit uses `RetryRouter` from "
                          "backendlab.topics.kafkaretry.router: this lab asks you to write that decision"),
])
def test_the_checks_refuse_what_the_lab_rules_out(fn, hint):
    report = lab07.check(fn)
    assert all(not result.passed and result.message.startswith(hint)
               for result in report.results), str(report)


def test_the_crash_check_says_what_cannot_travel_to_another_process(broker):
    (result,) = lab07.check(uses_a_tuple, only=[LOSES]).results
    assert result.message.startswith("uses_a_tuple uses `TRANSIENT_TYPES` from elsewhere in the "
                                     "notebook"), result.message
    assert "define `TRANSIENT_TYPES` inside a function" in result.message


def test_the_learner_module_carries_the_helpers_and_their_imports(solution, tmp_path):
    source = function_module(solution, helpers=True)
    assert set(source.split("\n\n\n")[0].splitlines()) == {
        "WEEK_S = 604800", "import json", "from dataclasses import replace",
        "from backendlab.topics.kafkaretry.headers import RetryMetadata",
        "from backendlab.topics.kafkaretry.headers import decode",
        "from backendlab.topics.kafkaretry.headers import with_metadata"}
    shipped = module_of(source, tmp_path, "shipped")
    assert {"process", "next_copy", "deliver_once", "failure_kind"} <= set(vars(shipped))


def test_try_it_prints_what_became_of_each_event(broker, solution, capsys):
    lab07.try_it(solution)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "3 events, lab.max_attempts = 3, lab.delay_ms(1) = 300 ms"
    assert lines[1].split() == "welcome deliver: delivered copies: none".split()
    assert lines[2].split() == ("fails-once deliver: transient, delivered copies: "
                                "lab.topics.retry(1) (attempts 1, transient, due failed-at + "
                                "300 ms)").split()
    assert lines[3].split() == ("fax deliver: fatal copies: lab.topics.dlt (attempts 1, "
                                "fatal)").split()
    assert lines[4].startswith("expected: welcome delivered")


def test_an_unknown_check_name_is_refused():
    with pytest.raises(ValueError, match="no check named"):
        lab07.check(sync_process, only=["nope"])
