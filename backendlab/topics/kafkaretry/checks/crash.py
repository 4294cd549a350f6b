"""The crash check: the learner's `process` in a child process, killed by the crash plan at three
points and restarted from its committed offsets, with every `deliver` call logged in Redis.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from aiokafka import TopicPartition

from backendlab import processes
from backendlab.checks import describe_error
from backendlab.checks.child import function_module
from backendlab.topics.kafkaretry.checks.copies import role
from backendlab.topics.kafkaretry.checks.harness import MAX_ATTEMPTS, Crash, Lab, attempts_log
from backendlab.topics.kafkaretry.checks.learner import Calls
from backendlab.topics.kafkaretry.checks.scenario import Message, make_message, produce
from backendlab.topics.kafkaretry.consumer import RetryLoop, retry_consumer
from backendlab.topics.kafkaretry.producer import producer as started_producer
from backendlab.topics.kafkaretry.topics import RetryTopics, run_topics

CRASH_EVENTS, CRASH_DELAY_MS = 8, 200
CRASH_FLAKY = {"c-2": 2, "c-5": 1}  # event id -> how many times its delivery fails
# Where each run of the crash check dies (see Crash): just before its first copy's send, just after
# its first copy was acknowledged, just before its 2nd commit of a source record; the last run
# finishes. The child's group uses short timings so a restart rejoins in about a second.
CRASH_PLAN = (("send", 1), ("sent", 1), ("commit", 2), None)
KILL_POINTS = {"send": "just before a retry copy's send",
               "sent": "just after a retry copy was acknowledged, before its record's commit",
               "commit": "just before a source record's commit"}
MISSED_KILL = {  # what to change when a run finished instead of dying at that point
    "send": "c-2's first attempt fails with a ConnectionError, so copy it to lab.topics.retry(1) "
            "with lab.producer.send_and_wait and return (do not retry it inside process)",
    "sent": "after a restart c-2 fails again, and c-5 fails once; copy each to "
            "lab.topics.retry(1) with lab.producer.send_and_wait (do not retry it inside "
            "process), then commit",
    "commit": "await lab.commit(record) for each record"}
WORKER_TIMINGS = dict(session_timeout_ms=1000, heartbeat_interval_ms=250)
WORKER_LIMIT_S = 10.0
_WORKER = ("import sys; from backendlab.topics.kafkaretry.checks.crash import crash_run; "
           "sys.exit(crash_run(sys.argv[1]))")


def crash_run(settings_json: str) -> int:
    """One run of the crash check, in its own process: import the learner's `process` and consume
    until the source and retry topics are committed to their ends, or until the crash plan kills
    this process."""
    settings = json.loads(settings_json)
    spec = importlib.util.spec_from_file_location("learner", Path(settings["folder"], "learner.py"))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        process = getattr(module, settings["name"])
    except Exception as exc:
        return _say(3, error=f"{settings['name']} does not load in another process: "
                             f"{describe_error(exc)}")
    return asyncio.run(_consume_until_committed(process, settings))


def _say(code: int, **what) -> int:
    print(json.dumps(what), flush=True)
    return code


async def _consume_until_committed(fn, settings: dict) -> int:
    topics = RetryTopics(settings["source"], MAX_ATTEMPTS - 1)
    client = redis.Redis.from_url(settings["redis"])
    crash = Crash(*settings["crash"]) if settings["crash"] else None
    bootstrap = settings["bootstrap"]
    async with started_producer(bootstrap) as producer, retry_consumer(
            bootstrap, topics, group=settings["group"], **WORKER_TIMINGS) as consumer:
        lab = Lab(topics, consumer, producer, client, settings["prefix"], CRASH_DELAY_MS, crash)
        calls = Calls(fn, lab)
        loop = RetryLoop(consumer, topics, calls)
        await loop.join()
        behind = await _drain(loop, lab, calls)
    name = settings["name"]
    if calls.unwritten:
        return _say(3, error=f"{name} is not written yet ({calls.unwritten})")
    if calls.escapes:
        record, text = calls.escapes[0]
        return _say(3, error=f"{name} let {text} escape on {record.value[:40]!r}")
    if behind:
        return _say(4, timeout=behind)
    return _say(0, done=True)


async def _drain(loop: RetryLoop, lab: Lab, calls: Calls) -> str | None:
    """Run `loop` until the source and retry topics are committed to their ends (a copy sent
    meanwhile extends a retry topic) or `process` failed. After WORKER_LIMIT_S, says which topic
    is behind; else None."""
    consumer = loop.consumer
    partitions = [TopicPartition(name, 0) for name in lab.topics.all()[:-1]]
    for tp in partitions:
        lab.committed[tp] = await consumer.committed(tp) or 0
    deadline = time.monotonic() + WORKER_LIMIT_S
    while True:
        ends = await consumer.end_offsets(partitions)
        behind = [tp for tp in partitions if lab.committed[tp] < ends[tp]]

        def caught_up() -> bool:
            failed = bool(calls.unwritten or calls.escapes)
            return failed or all(lab.committed[tp] >= ends[tp] for tp in behind)

        if caught_up():
            return None
        try:
            await loop.run(until=caught_up, timeout=deadline - time.monotonic())
        except TimeoutError:
            tp = next(tp for tp in behind if lab.committed[tp] < ends[tp])
            return (f"the committed offset of {role(lab.topics, tp.topic)} stayed at "
                    f"{lab.committed[tp]} of its {ends[tp]} records")


def _crash_messages() -> list[Message]:
    """Healthy events, but c-2 fails twice: the first run dies sending its first copy, the second
    once its second copy (the record read again) is acknowledged. c-5 fails once, so that code
    which lost c-2 still sends a copy in the second run, and the last run still retries."""
    messages = []
    for n in range(CRASH_EVENTS):
        event = {"id": f"c-{n}", "type": "email"}
        if event["id"] in CRASH_FLAKY:
            event["fail_times"] = CRASH_FLAKY[event["id"]]
        messages.append(make_message(f"c-{n}", "healthy", event, f"user-c{n}", f"t-c{n}"))
    return messages


@dataclass
class CrashOutcome:
    """What the crash check's runs reported (one JSON object each) and every `deliver` call."""

    runs: list[dict]
    attempts: dict[str, list[dict]]
    ids: list[str]


async def crash_scenario(fn, bootstrap: str, url: str, client: redis.Redis,
                         prefix: str) -> CrashOutcome:
    """Send the crash events, then run `fn` in a child process once per step of the crash plan."""
    source = function_module(fn, helpers=True)
    messages = _crash_messages()
    async with run_topics(bootstrap, "lab07crash", retries=MAX_ATTEMPTS - 1) as topics:
        await produce(bootstrap, topics.source, messages, 0)
        with tempfile.TemporaryDirectory(prefix="backendlab-lab07-") as folder:
            Path(folder, "learner.py").write_text(source)
            settings = dict(folder=folder, name=fn.__name__, bootstrap=bootstrap, redis=url,
                            source=topics.source, group=f"{topics.source}-crash", prefix=prefix)
            runs = []
            for crash in CRASH_PLAN:
                runs.append(await _run_worker({**settings, "crash": crash}))
                if "crashed" not in runs[-1] and crash is not None:
                    break  # an error, a stall, or a kill that never came: later runs tell nothing
    return CrashOutcome(runs, attempts_log(client, prefix), [m.event_id for m in messages])


async def _run_worker(settings: dict) -> dict:
    """Run `crash_run` in a child process; the last JSON object it printed."""
    limit = WORKER_LIMIT_S + 10  # the run, plus starting Python and joining the group
    child = processes.start("lab07-crash", [sys.executable, "-c", _WORKER, json.dumps(settings)])
    try:
        await asyncio.to_thread(child.popen.wait, limit)
    except subprocess.TimeoutExpired:
        return {"error": f"the crash check's process did not finish within {limit:.0f} s"}
    finally:
        output = child.output()
        child.stop()
    said = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    if said:
        return said[-1]
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
    return {"error": f"the crash check's process failed: {last[0]}"}
