"""Lab 07's checks: a Kafka consumer's `process(record, lab)` that retries, backs off, dead-letters
and survives a crash, written without the kit's router.

The harness runs the retry loop (`RetryLoop`: it calls `process` for each due record of the source
topic and its retry topics, and holds a retry topic until its head's `x-retry-due-ms`). One
scenario feeds healthy events, fatal ones, one that always fails and one that fails twice into
fresh topics; the checks read what it left: deliveries (logged in Redis by `lab.deliver`), the
copies in the retry and dead-letter topics, and the committed offsets. The crash checks run
`process` in a real child process and SIGKILL it three times, restarting it after each: just before
its first retry copy's send, just after a retry copy was acknowledged (its record not committed),
and just before it commits a source record. Topics are deleted and Redis keys removed afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import inspect
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
from aiokafka import TopicPartition

from backendlab import processes
from backendlab.checks import (Check, CheckFailed, Report, describe_error, function_module,
                               run_checks, select, used_names)
from backendlab.coroutines import run_coroutine
from backendlab.topics.kafkaretry.backoff import exponential_ms
from backendlab.topics.kafkaretry.consumer import RetryLoop, retry_consumer
from backendlab.topics.kafkaretry.headers import decode
from backendlab.topics.kafkaretry.producer import producer as started_producer
from backendlab.topics.kafkaretry.reading import read_topic
from backendlab.topics.kafkaretry.topics import RetryTopics, run_topics

MAX_ATTEMPTS = 3
DELAY_MS = 800  # the backoff before retry 1 in the checks; it doubles for each retry after
KNOWN_TYPES = ("email", "websocket")
HEALTHY, HEALTHY_EVERY_S = 30, 0.08  # sent while the failing event retries
LATENCY_LIMIT_MS = DELAY_MS // 2  # for the 90th percentile: one scheduling hiccup is tolerated
RUN_LIMIT_S = 12.0  # the scenario's whole run; it needs about 3 s
CALL_LIMIT_S = 10.0  # one call of process
EARLY_SLACK_MS = 50  # an attempt this much before its backoff ended counts as early
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
FORBIDDEN = ("backendlab.topics.kafkaretry.router", "backendlab.topics.kafkaretry.errors")

_WORKER = ("import sys; from backendlab.topics.kafkaretry.checks import crash_run; "
           "sys.exit(crash_run(sys.argv[1]))")


def _backoff(attempt: int, delay_ms: int = DELAY_MS) -> int:
    """The backoff before retry `attempt` (1-based): `delay_ms`, doubled for each retry after."""
    return exponential_ms(attempt, delay_ms, cap_ms=60_000)


# What the learner's process is given

@dataclass(frozen=True)
class Crash:
    """Where a crash-check run dies: the `call`-th time it reaches `at`. "send" is just before a
    copy is sent; "sent" is as soon as the broker acknowledged a copy, before `process` goes on (to
    its commit); "commit" is just before a record of the source topic is committed."""

    at: str
    call: int


class Lab:
    """What `process(record, lab)` gets: the topics and retry policy, a producer, commits, the
    downstream (`deliver`), and Redis to remember what was delivered. See the lab's task."""

    def __init__(self, topics: RetryTopics, consumer, producer, client: redis.Redis, prefix: str,
                 delay_ms: int = DELAY_MS, crash: Crash | None = None):
        self.topics = topics
        self.max_attempts = MAX_ATTEMPTS
        self.producer = producer if crash is None else _CrashingProducer(producer, self)
        self.redis = client
        self.committed: dict = {}  # TopicPartition -> the offset lab.commit committed last
        self._consumer, self._prefix, self._delay, self._crash = consumer, prefix, delay_ms, crash
        self._calls: collections.Counter = collections.Counter()

    def __repr__(self) -> str:
        return f"<lab: source {self.topics.source}, max_attempts {self.max_attempts}>"

    def delay_ms(self, attempt: int) -> int:
        """The backoff before retry `attempt` (1-based); it doubles for each retry."""
        return _backoff(attempt, self._delay)

    @staticmethod
    def now_ms() -> int:
        """The time now, in epoch milliseconds."""
        return time.time_ns() // 1_000_000

    def key(self, name: str) -> str:
        """A Redis key of yours under the check's prefix (deleted after the check)."""
        return f"{self._prefix}:yours:{name}"

    async def commit(self, record) -> None:
        """Commit `record.offset + 1` for the record's partition: it will not be read again."""
        if record.topic == self.topics.source:
            self._reached("commit")
        partition = TopicPartition(record.topic, record.partition)
        await self._consumer.commit({partition: record.offset + 1})
        self.committed[partition] = record.offset + 1

    async def deliver(self, event) -> None:
        """The side effect (an email, a push). Raises ValueError for an event it can never
        deliver, ConnectionError while the downstream is down for it."""
        if not isinstance(event, dict) or "id" not in event:
            raise ValueError(f"an event is a JSON object with an 'id', not {event!r:.60}")
        event_id = str(event["id"])
        if event.get("type") not in KNOWN_TYPES:
            self._log(event_id, "fatal")
            raise ValueError(f"unknown event type {event.get('type')!r}")
        calls = self.redis.hincrby(self._harness("calls"), event_id, 1)
        if event.get("always_fail") or calls <= int(event.get("fail_times", 0)):
            self._log(event_id, "transient")
            raise ConnectionError(f"the {event['type']} service did not answer")
        self._log(event_id, "delivered")

    def _harness(self, name: str) -> str:
        return f"{self._prefix}:harness:{name}"

    def _log(self, event_id: str, outcome: str) -> None:
        entry = {"id": event_id, "at_ms": time.time() * 1000, "outcome": outcome}
        self.redis.rpush(self._harness("attempts"), json.dumps(entry))

    def attempts(self) -> dict[str, list[dict]]:
        """The check's record of every `deliver` call so far, by event id, in order."""
        return _attempts_log(self.redis, self._prefix)

    def _reached(self, kind: str) -> None:
        """Count a call; at the planned one, die as a crash does: no cleanup, no commit."""
        self._calls[kind] += 1
        if self._crash and (kind, self._calls[kind]) == (self._crash.at, self._crash.call):
            print(json.dumps({"crashed": kind, "call": self._crash.call}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def _attempts_log(client: redis.Redis, prefix: str) -> dict[str, list[dict]]:
    """Every `deliver` call logged under `prefix` (by any process), by event id, in order."""
    found: dict[str, list[dict]] = collections.defaultdict(list)
    for raw in client.lrange(f"{prefix}:harness:attempts", 0, -1):
        entry = json.loads(raw)
        found[entry["id"]].append(entry)
    return found


class _CrashingProducer:
    """The producer, except that a send and its acknowledgement are points where the crash plan
    may kill us. The acknowledgement's kill runs as the broker's answer arrives, before the
    coroutine that awaits it resumes: the copy is in its topic, the record not yet committed."""

    def __init__(self, producer, lab: Lab):
        self._producer, self._lab = producer, lab

    def __getattr__(self, name):
        return getattr(self._producer, name)

    async def send(self, *args, **kwargs):
        self._lab._reached("send")
        future = await self._producer.send(*args, **kwargs)
        future.add_done_callback(self._acknowledged)
        return future

    async def send_and_wait(self, *args, **kwargs):
        return await (await self.send(*args, **kwargs))

    def _acknowledged(self, future) -> None:
        if not future.cancelled() and future.exception() is None:
            self._lab._reached("sent")


# The learner's function: checked, described, and shipped to the crash check's process

def _validate(fn) -> None:
    """Refuse what cannot be checked: a sync function, or one that uses the kit's router."""
    name = getattr(fn, "__name__", "process")
    if not inspect.iscoroutinefunction(fn):
        raise CheckFailed(f"pass your `async def {name}(record, lab)` function itself (not a "
                          "call of it); the check awaits it for each record")
    for global_name, value in used_names(fn, helpers=True)[1].items():
        module = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "")
        if module in FORBIDDEN or module == "backendlab.topics.kafkaretry":
            raise CheckFailed(f"{name} uses `{global_name}` from {module}: this lab asks you to "
                              "write that decision yourself (backendlab.topics.kafkaretry.headers is "
                              "fine)")


def _describe(exc: BaseException, fn) -> str:
    """One line naming `exc` and the line of the learner's code (process or a helper) that
    raised it."""
    text = describe_error(exc)
    filename = fn.__code__.co_filename
    mine = [(frame, line) for frame, line in traceback.walk_tb(exc.__traceback__)
            if frame.f_code.co_filename == filename]
    if mine:
        frame, line = mine[-1]
        text += f" (line {line - frame.f_code.co_firstlineno + 1} of {frame.f_code.co_name})"
    return text


# The scenario: what goes in, and what the learner's code left behind

@dataclass
class Message:
    """One record the scenario sends to the source topic, and what became of it."""

    label: str
    event_id: str | None
    value: bytes
    key: bytes
    kind: str  # healthy, flaky (fails twice), poison (always fails) or fatal
    headers: list = field(default_factory=list)
    offset: int = -1
    sent_ms: float = 0.0


def _message(label, kind, event, key: str, trace: str) -> Message:
    value = event if isinstance(event, bytes) else json.dumps(event).encode()
    event_id = event.get("id") if isinstance(event, dict) else None
    return Message(label, event_id, value, key.encode(), kind, [("trace-id", trace.encode())])


def _scenario_messages() -> list[Message]:
    """The failing and fatal events first, then healthy ones (sent while the others retry)."""
    upfront = [
        _message("the always-failing event", "poison",
                 {"id": "always-fails", "type": "email", "always_fail": True}, "user-1", "t-1"),
        _message("the event that fails twice", "flaky",
                 {"id": "fails-twice", "type": "websocket", "fail_times": 2}, "user-2", "t-2"),
        _message("the unknown-type event", "fatal", {"id": "fax-1", "type": "fax"}, "user-3",
                 "t-3"),
        _message("the non-JSON message", "fatal", b"{not json", "user-4", "t-4"),
        _message("the event without an id", "fatal", {"type": "email"}, "user-5", "t-5"),
    ]
    healthy = [_message(f"healthy event h-{n}", "healthy",
                        {"id": f"h-{n}", "type": "email", "to": f"user{n}@example.com"},
                        f"user-h{n}", f"t-h{n}") for n in range(HEALTHY)]
    return upfront + healthy


@dataclass
class Observed:
    """What one scenario run left: deliveries, copies, commits, and what escaped `process`."""

    topics: RetryTopics
    messages: list[Message]
    attempts: dict[str, list[dict]]
    copies: dict[str, list]  # topic -> its records
    commits: dict[str, tuple[int, int]]  # topic -> (committed offset, end offset)
    escapes: list[tuple[object, str]]
    started_ms: int
    ended_ms: int

    def of(self, kind: str) -> list[Message]:
        return [message for message in self.messages if message.kind == kind]

    def copies_of(self, message: Message, topic: str) -> list:
        return [record for record in self.copies[topic] if record.value == message.value]

    def delivered(self, message: Message) -> int:
        return _delivered(self.attempts, message.event_id)


def _delivered(attempts: dict, event_id: str) -> int:
    """How many times `event_id` was delivered, from the attempts log."""
    return sum(a["outcome"] == "delivered" for a in attempts.get(event_id, []))


async def _produce(bootstrap: str, topic: str, messages: list[Message], every_s: float,
                   stop: threading.Event | None = None) -> None:
    """Send `messages` in order (healthy ones `every_s` apart), noting each one's offset and send
    time; stop early once `stop` is set."""
    async with started_producer(bootstrap) as producer:
        for message in messages:
            if message.kind == "healthy":
                await asyncio.sleep(every_s)
            if stop is not None and stop.is_set():
                return
            message.sent_ms = time.time() * 1000
            sent = await producer.send_and_wait(topic, message.value, key=message.key,
                                                headers=message.headers)
            message.offset = sent.offset


@contextlib.asynccontextmanager
async def _producing(bootstrap: str, topic: str, messages: list[Message]):
    """Send `messages` to `topic` while the body runs, in a thread of its own so that a `process`
    that blocks cannot delay the sends; however the body ends, stop the sends and wait for them,
    so none goes to a topic being deleted."""
    stop = threading.Event()
    production = asyncio.ensure_future(asyncio.to_thread(
        asyncio.run, _produce(bootstrap, topic, messages, HEALTHY_EVERY_S, stop)))
    try:
        yield production
    finally:
        stop.set()
        await production


class _Calls:
    """Calls `process` for the loop; notes what escaped it (record, one line) and when it last
    ran."""

    def __init__(self, fn, lab: Lab):
        self.fn, self.lab = fn, lab
        self.escapes: list = []
        self.unwritten: BaseException | None = None
        self.last = time.monotonic()

    async def __call__(self, record) -> None:
        if self.unwritten:
            return
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.fn(record, self.lab), CALL_LIMIT_S)
        except NotImplementedError as exc:
            self.unwritten = exc
        except Exception as exc:
            hung = time.monotonic() - started >= CALL_LIMIT_S
            self.escapes.append((record, f"a call that ran for {CALL_LIMIT_S:.0f} s" if hung
                                 else _describe(exc, self.fn)))
        self.last = time.monotonic()


def _finished(calls: _Calls, production, messages: list[Message], source) -> bool:
    """Whether the run is over: everything expected happened (and 0.2 s passed quietly), the
    stub said it is not written, or nothing ran for longer than any backoff."""
    if calls.unwritten:
        return True
    if not production.done():
        return False
    quiet = time.monotonic() - calls.last
    if quiet > (calls.lab.delay_ms(MAX_ATTEMPTS - 1) + 2000) / 1000:
        return True
    if quiet <= 0.2 or calls.lab.committed.get(source, 0) < len(messages):
        return False  # before reading the attempts log: this runs after every poll
    attempts = calls.lab.attempts()

    def outcomes(message):
        return [a["outcome"] for a in attempts.get(message.event_id, [])]

    return (all("delivered" in outcomes(m) for m in messages if m.kind in ("healthy", "flaky"))
            and all(len(outcomes(m)) >= MAX_ATTEMPTS for m in messages if m.kind == "poison"))


async def _scenario(fn, bootstrap: str, client: redis.Redis, prefix: str,
                    messages: list[Message], delay_ms: int = DELAY_MS):
    """Run `messages` through `fn` in fresh topics; returns (Observed, unwritten exception)."""
    started = Lab.now_ms()
    async with run_topics(bootstrap, "lab07", retries=MAX_ATTEMPTS - 1) as topics:
        async with started_producer(bootstrap) as producer, retry_consumer(bootstrap, topics) as consumer:
            lab = Lab(topics, consumer, producer, client, prefix, delay_ms)
            calls = _Calls(fn, lab)
            loop = RetryLoop(consumer, topics, calls)
            await loop.join()
            source = TopicPartition(topics.source, 0)
            async with _producing(bootstrap, topics.source, messages) as production:
                with contextlib.suppress(TimeoutError):
                    await loop.run(until=lambda: _finished(calls, production, messages, source),
                                   timeout=RUN_LIMIT_S)
            commits = await _commits(consumer, topics)
        ended = Lab.now_ms()
        names = topics.all()[1:]  # the retry topics and the DLT
        records = await asyncio.gather(*(read_topic(bootstrap, name) for name in names))
    observed = Observed(topics, messages, lab.attempts(), dict(zip(names, records)), commits,
                        calls.escapes, started, ended)
    return observed, calls.unwritten


async def _commits(consumer, topics: RetryTopics) -> dict[str, tuple[int, int]]:
    """(committed, end) offsets of partition 0 of the source and retry topics."""
    partitions = [TopicPartition(name, 0) for name in topics.all()[:-1]]
    ends = await consumer.end_offsets(partitions)
    return {tp.topic: (await consumer.committed(tp) or 0, ends[tp]) for tp in partitions}


# The crash check: the learner's code in a child process, killed and restarted

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
        calls = _Calls(fn, lab)
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


async def _drain(loop: RetryLoop, lab: Lab, calls: _Calls) -> str | None:
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
            return (f"the committed offset of {_role(lab.topics, tp.topic)} stayed at "
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
        messages.append(_message(f"c-{n}", "healthy", event, f"user-c{n}", f"t-c{n}"))
    return messages


@dataclass
class CrashOutcome:
    """What the crash check's runs reported (one JSON object each) and every `deliver` call."""

    runs: list[dict]
    attempts: dict[str, list[dict]]
    ids: list[str]


async def _crash_scenario(fn, bootstrap: str, url: str, client: redis.Redis,
                          prefix: str) -> CrashOutcome:
    source = function_module(fn, helpers=True)
    messages = _crash_messages()
    async with run_topics(bootstrap, "lab07crash", retries=MAX_ATTEMPTS - 1) as topics:
        await _produce(bootstrap, topics.source, messages, 0)
        with tempfile.TemporaryDirectory(prefix="backendlab-lab07-") as folder:
            Path(folder, "learner.py").write_text(source)
            settings = dict(folder=folder, name=fn.__name__, bootstrap=bootstrap, redis=url,
                            source=topics.source, group=f"{topics.source}-crash", prefix=prefix)
            runs = []
            for crash in CRASH_PLAN:
                runs.append(await _run_worker({**settings, "crash": crash}))
                if "crashed" not in runs[-1] and crash is not None:
                    break  # an error, a stall, or a kill that never came: later runs tell nothing
    return CrashOutcome(runs, _attempts_log(client, prefix), [m.event_id for m in messages])


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


# The session: one scenario run and one crash run, shared by the checks that read them

class _Session:
    """The learner's function and the runs the checks judge, each made once, on first use."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "process")
        self.prefix = f"backendlab:lab07:{uuid.uuid4().hex[:10]}"
        self.url: str | None = None
        self.client: redis.Redis | None = None
        self._runs: dict = {}

    def _connect(self) -> None:
        if self.client is None:
            from backendlab.services.redis import redis_url

            self.url = redis_url()
            self.client = redis.Redis.from_url(self.url)

    def _once(self, name: str, make):
        """`make()`'s result, made on the first call; a failure is raised again to each caller."""
        if name not in self._runs:
            try:
                self._runs[name] = (make(), None)
            except Exception as exc:
                self._runs[name] = (None, exc)
        value, error = self._runs[name]
        if error is not None:
            raise error
        return value

    def scenario(self, messages: list[Message] | None = None, delay_ms: int = DELAY_MS) -> Observed:
        """The scenario's outcome; CheckFailed when `process` is not written yet."""
        from backendlab.services.kafka import kafka_bootstrap

        _validate(self.fn)
        self._connect()
        observed, unwritten = self._once("scenario", lambda: run_coroutine(_scenario(
            self.fn, kafka_bootstrap(), self.client, f"{self.prefix}:scenario",
            messages or _scenario_messages(), delay_ms), timeout=90))
        if unwritten is not None:
            raise CheckFailed(f"{self.name} is not written yet ({unwritten})")
        return observed

    def crash(self) -> CrashOutcome:
        """The crash check's outcome; CheckFailed when a run reported an error or stalled."""
        from backendlab.services.kafka import kafka_bootstrap

        _validate(self.fn)
        self._connect()
        outcome = self._once("crash", lambda: run_coroutine(_crash_scenario(
            self.fn, kafka_bootstrap(), self.url, self.client, f"{self.prefix}:crash"),
            timeout=120))
        for said in outcome.runs:
            if "error" in said:
                raise CheckFailed(f"in the crash check's process: {said['error']}")
            if "timeout" in said:
                raise CheckFailed(f"in the crash check's process, {said['timeout']} for "
                                  f"{WORKER_LIMIT_S:.0f} s: await lab.commit(record) once each "
                                  "record is done")
        return outcome

    def close(self) -> None:
        if self.client is not None:
            from backendlab.services.redis import delete_keys

            delete_keys(self.client, self.prefix)
            self.client.close()


# Reading what the learner's code left

def _role(topics: RetryTopics, name: str) -> str:
    """How the task names a topic: lab.topics.source, lab.topics.retry(n) or lab.topics.dlt."""
    if name == topics.dlt:
        return "lab.topics.dlt"
    if name in topics.retry_names:
        return f"lab.topics.retry({topics.retry_names.index(name) + 1})"
    return "lab.topics.source"


def _no_escape(run: Observed, message: Message, name: str) -> None:
    for record, text in run.escapes:
        if record.value == message.value:
            raise CheckFailed(f"{name} let {text} escape on {message.label} (from "
                              f"{_role(run.topics, record.topic)}): catch it and copy the record "
                              "to its retry topic or the DLT, then commit it")


def _one_copy(run: Observed, message: Message, topic: str, why: str):
    copies = run.copies_of(message, topic)
    where = _role(run.topics, topic)
    if not copies:
        raise CheckFailed(f"{message.label} never reached {where}: {why}")
    if len(copies) > 1:
        raise CheckFailed(f"{message.label} is in {where} {len(copies)} times: copy a record "
                          "once per failed attempt")
    return copies[0]


def _metadata(run: Observed, copy, message: Message):
    where = _role(run.topics, copy.topic)
    try:
        meta = decode(copy.headers)
    except ValueError as exc:
        raise CheckFailed(f"the copy of {message.label} in {where}: {exc}; write every "
                          "x-retry-* header of the task's table") from None
    if meta is None:
        raise CheckFailed(f"the copy of {message.label} in {where} has no x-retry-* headers: add "
                          "the metadata of the task's table")
    return meta


def _expect_copy(run: Observed, copy, message: Message, meta, attempts: int, kind: str) -> None:
    """The metadata every copy of `message` must carry: origin, attempts, kind, error, times, and
    the message's own key and headers."""
    where = f"the copy of {message.label} in {_role(run.topics, copy.topic)}"
    origin = (meta.original_topic, meta.original_partition, meta.original_offset)
    if origin != (run.topics.source, 0, message.offset):
        raise CheckFailed(f"{where} names its origin {origin[0]} partition {origin[1]} offset "
                          f"{origin[2]}, but it came from lab.topics.source partition 0 offset "
                          f"{message.offset}: a retry copy carries the original-* headers over")
    if meta.attempts != attempts:
        raise CheckFailed(f"{where} says x-retry-attempts {meta.attempts}, but {attempts} "
                          f"attempt{'s' if attempts > 1 else ''} failed: count every attempt "
                          "made so far, the first included")
    if meta.error_kind != kind:
        raise CheckFailed(f"{where} says x-retry-error-kind {meta.error_kind!r}, not {kind!r}: a "
                          "ConnectionError is transient; ValueError, KeyError and JSON errors "
                          "are fatal")
    if not meta.error.strip():
        raise CheckFailed(f"{where} has an empty x-retry-error: write `TypeName: message`")
    low, high = run.started_ms - 1000, run.ended_ms + 1000
    for header, value in (("first-seen", meta.first_seen_ms), ("failed-at", meta.failed_at_ms)):
        if not low <= value <= high:
            raise CheckFailed(f"{where} has x-retry-{header}-ms {value}, not a time during the "
                              "check: write lab.now_ms() (epoch milliseconds)")
    if meta.first_seen_ms > meta.failed_at_ms:
        raise CheckFailed(f"{where} was first seen after it failed last: x-retry-first-seen-ms "
                          "is when the first attempt failed, carried over from copy to copy")
    if copy.key != message.key:
        raise CheckFailed(f"{where} has key {copy.key!r}, not {message.key!r}: send the copy "
                          "with key=record.key")
    if not set(message.headers) <= {(name, bytes(value)) for name, value in copy.headers}:
        raise CheckFailed(f"{where} lost the record's own header {message.headers[0][0]}: keep "
                          "record.headers and add the x-retry-* ones")


# The checks

def _healthy(session: _Session) -> str:
    run = session.scenario()
    healthy = run.of("healthy")
    for message in healthy:
        _no_escape(run, message, session.name)
        count = run.delivered(message)
        if count != 1:
            raise CheckFailed(f"{message.label} was delivered {count} times: parse record.value "
                              "with json.loads and await lab.deliver(event), once")
    for topic, (committed, end) in run.commits.items():
        if committed != end:
            raise CheckFailed(f"{_role(run.topics, topic)} holds {end} records, but its committed "
                              f"offset is {committed}: await lab.commit(record) once each record "
                              "is done (delivered, or copied to a retry topic or the DLT)")
    return f"{len(healthy)} healthy events delivered once each; every record committed"


def _fatal(session: _Session) -> str:
    run = session.scenario()
    retries = [run.topics.retry(n) for n in range(1, MAX_ATTEMPTS)]
    for message in run.of("fatal"):
        _no_escape(run, message, session.name)
        for topic in retries:
            if run.copies_of(message, topic):
                raise CheckFailed(f"{message.label} went to {_role(run.topics, topic)}: a "
                                  "ValueError, KeyError or JSON error fails the same way every "
                                  "time; send it straight to lab.topics.dlt")
        tried = len(run.attempts.get(message.event_id, []))
        if tried > 1:
            raise CheckFailed(f"lab.deliver was called {tried} times for {message.label}: a "
                              "fatal error is not retried")
        copy = _one_copy(run, message, run.topics.dlt,
                         "a fatal error goes to lab.topics.dlt after its first attempt")
        meta = _metadata(run, copy, message)
        _expect_copy(run, copy, message, meta, 1, "fatal")
        if message.event_id == "fax-1" and not all(
                word in meta.error for word in ("ValueError", "unknown event type")):
            raise CheckFailed(f"the DLT copy of {message.label} says x-retry-error "
                              f"{meta.error!r}: write the exception as `TypeName: message`, "
                              "f\"{type(exc).__name__}: {exc}\"")
    return (f"{len(run.of('fatal'))} fatal messages in the DLT after one attempt, with metadata, "
            "key, value and headers")


def _transient(session: _Session) -> str:
    run = session.scenario()
    (message,) = run.of("poison")
    _no_escape(run, message, session.name)
    first_seen = None
    for n in range(1, MAX_ATTEMPTS):
        copy = _one_copy(run, message, run.topics.retry(n),
                         f"after attempt {n} failed with a ConnectionError (transient), copy it "
                         f"to lab.topics.retry({n})")
        meta = _metadata(run, copy, message)
        _expect_copy(run, copy, message, meta, n, "transient")
        first_seen = first_seen or meta.first_seen_ms
        if meta.first_seen_ms != first_seen:
            raise CheckFailed(f"x-retry-first-seen-ms changed from {first_seen} to "
                              f"{meta.first_seen_ms} in lab.topics.retry({n}): carry it over")
        if meta.due_ms is None or meta.due_ms - meta.failed_at_ms < _backoff(n):
            gap = "no x-retry-due-ms" if meta.due_ms is None else (
                f"x-retry-due-ms {meta.due_ms - meta.failed_at_ms} ms after its failed-at")
            raise CheckFailed(f"the copy in lab.topics.retry({n}) has {gap}: it must be due "
                              f"lab.delay_ms({n}) = {_backoff(n)} ms after the failure")
    copy = _one_copy(run, message, run.topics.dlt,
                     f"after attempt {MAX_ATTEMPTS} of lab.max_attempts = {MAX_ATTEMPTS} failed, "
                     "copy it to lab.topics.dlt")
    _expect_copy(run, copy, message, _metadata(run, copy, message), MAX_ATTEMPTS, "transient")
    tried = len(run.attempts.get(message.event_id, []))
    if tried != MAX_ATTEMPTS:
        raise CheckFailed(f"lab.deliver was called {tried} times for {message.label}; with "
                          f"lab.max_attempts = {MAX_ATTEMPTS}, exactly {MAX_ATTEMPTS}")
    hops = ", ".join(f"retry({n})" for n in range(1, MAX_ATTEMPTS))
    delays = ", ".join(str(_backoff(n)) for n in range(1, MAX_ATTEMPTS))
    return f"{hops}, then the DLT after {MAX_ATTEMPTS} attempts; due after {delays} ms"


def _due(session: _Session) -> str:
    run = session.scenario()
    gaps = []
    for message in run.of("poison") + run.of("flaky"):
        _no_escape(run, message, session.name)
        times = [a["at_ms"] for a in run.attempts.get(message.event_id, [])]
        if len(times) < 2:
            raise CheckFailed(f"{message.label} was attempted {len(times)} time(s): after a "
                              "transient failure it comes back from a retry topic")
        for n, (before, after) in enumerate(zip(times, times[1:]), 1):
            if after - before < _backoff(n) - EARLY_SLACK_MS:
                raise CheckFailed(f"attempt {n + 1} of {message.label} ran {after - before:.0f} "
                                  f"ms after attempt {n}, but lab.delay_ms({n}) is {_backoff(n)} "
                                  f"ms: due = failed-at + lab.delay_ms({n}) on the copy, and no "
                                  "second lab.deliver call inside process")
            gaps.append(after - before - _backoff(n))
    return f"every retry came after its backoff (at most {max(gaps):.0f} ms later)"


def _recovers(session: _Session) -> str:
    run = session.scenario()
    (message,) = run.of("flaky")
    _no_escape(run, message, session.name)
    for copy in run.copies_of(message, run.topics.dlt):
        said = dict(copy.headers).get("x-retry-attempts", b"?").decode(errors="replace")
        raise CheckFailed(f"{message.label} reached the DLT with x-retry-attempts {said}; it "
                          f"fails twice and is delivered on attempt {MAX_ATTEMPTS}: dead-letter "
                          f"only when attempt lab.max_attempts = {MAX_ATTEMPTS} fails")
    count = run.delivered(message)
    if count != 1:
        raise CheckFailed(f"{message.label} was delivered {count} times; it should be delivered "
                          f"once, on attempt {MAX_ATTEMPTS} (mark an event as delivered only "
                          "after lab.deliver returned)")
    return f"delivered once, on attempt {MAX_ATTEMPTS}; never dead-lettered"


def _not_held(session: _Session) -> str:
    run = session.scenario()
    latencies = []
    for message in run.of("healthy"):
        _no_escape(run, message, session.name)
        done = [a["at_ms"] for a in run.attempts.get(message.event_id, [])
                if a["outcome"] == "delivered"]
        if not done:
            raise CheckFailed(f"{message.label} was never delivered")
        latencies.append(done[0] - message.sent_ms)
    typical = _p90(latencies)
    if typical > LATENCY_LIMIT_MS:
        raise CheckFailed(f"healthy events waited up to {typical:.0f} ms (90th percentile) while "
                          f"the failing one retried (limit {LATENCY_LIMIT_MS} ms; the first "
                          f"backoff is {DELAY_MS} ms): do not sleep in process; copy the record "
                          "to its retry topic with a due time and return; the loop holds that "
                          "topic until then")
    return (f"healthy latency {typical:.0f} ms (90th percentile; worst {max(latencies):.0f} ms) "
            f"while the failing event retried (limit {LATENCY_LIMIT_MS} ms)")


def _p90(values: list[float]) -> float:
    """The 90th percentile: robust to one event that a busy machine delayed, unlike the max."""
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _kills(outcome: CrashOutcome) -> str:
    """Where the runs died, in order, as the messages say it."""
    return ", then ".join(KILL_POINTS[said["crashed"]] for said in outcome.runs
                          if "crashed" in said)


def _missed_kill(outcome: CrashOutcome) -> None:
    """Fail, saying why, when a run finished where the plan kills it: the crash checks would judge
    runs that never died at the moments they are about."""
    for n, crash in enumerate(CRASH_PLAN[:-1]):
        said = outcome.runs[n] if n < len(outcome.runs) else {}
        if said.get("crashed") != crash[0]:
            raise CheckFailed(f"the check could not kill your consumer {KILL_POINTS[crash[0]]}: "
                              f"{MISSED_KILL[crash[0]]}")


def _loses_nothing(session: _Session) -> str:
    outcome = session.crash()
    lost = [i for i in outcome.ids if not _delivered(outcome.attempts, i)]
    if lost:
        raise CheckFailed(f"{', '.join(lost)} never delivered after the consumer was killed "
                          f"({_kills(outcome)}) and restarted from its committed offset: commit a "
                          "record last, after lab.deliver returned or after its copy's "
                          "send_and_wait returned; mark an event delivered only after "
                          "lab.deliver returned")
    _missed_kill(outcome)
    return f"killed {_kills(outcome)}, restarted: all {len(outcome.ids)} events delivered"


def _no_duplicates(session: _Session) -> str:
    outcome = session.crash()
    _missed_kill(outcome)
    for event_id in outcome.ids:
        count = _delivered(outcome.attempts, event_id)
        if count > 1:
            raise CheckFailed(f"{event_id} was delivered {count} times: after a crash, Kafka "
                              "delivers again every record after the last commit, and a copy "
                              "acknowledged before the crash stays in its retry topic; remember "
                              "delivered ids in Redis (lab.redis, lab.key(...)) and skip an event "
                              "already delivered")
    return ("killed after a retry copy was acknowledged and after a delivery, each before its "
            "commit: no event delivered twice")


SUITE = [
    Check("healthy events are delivered once and committed", _healthy),
    Check("a fatal error goes to the DLT at once, with metadata", _fatal),
    Check("a transient error is retried with backoff, then dead-lettered", _transient),
    Check("no attempt runs before its due time", _due),
    Check("an event that recovers is delivered exactly once", _recovers),
    Check("healthy events are not held behind a failing one", _not_held),
    Check("a crash loses no event", _loses_nothing),
    Check("a crash causes no duplicate delivery", _no_duplicates),
]


def check(process, only: list[str] | None = None) -> Report:
    """Run lab 07's checks (or those named in `only`) on `process`, your `async def
    process(record, lab)`; deletes the topics and Redis keys they made. Takes about 15 s."""
    suite = select(SUITE, only)
    session = _Session(process)
    try:
        return run_checks(suite, session, title=f"Lab 07: {session.name}")
    finally:
        session.close()


TRY_DELAY_MS = 300


def _try_messages() -> list[Message]:
    return [_message("welcome", "healthy", {"id": "welcome", "type": "email"}, "user-1", "t-1"),
            _message("fails-once", "flaky", {"id": "fails-once", "type": "websocket",
                                            "fail_times": 1}, "user-2", "t-2"),
            _message("fax", "fatal", {"id": "fax", "type": "fax"}, "user-3", "t-3")]


def _trail(run: Observed, message: Message) -> str:
    """One line: each `deliver` outcome, then each copy with its metadata."""
    outcomes = [a["outcome"] for a in run.attempts.get(message.event_id, [])] or ["not called"]
    copies = []
    for n in range(1, MAX_ATTEMPTS + 1):
        topic = run.topics.retry(n) if n < MAX_ATTEMPTS else run.topics.dlt
        for copy in run.copies_of(message, topic):
            try:
                meta = decode(copy.headers)
            except ValueError as exc:
                copies.append(f"{_role(run.topics, topic)} ({exc})")
                continue
            due = "" if meta is None or meta.due_ms is None else (
                f", due failed-at + {meta.due_ms - meta.failed_at_ms} ms")
            about = "no x-retry-* headers" if meta is None else (
                f"attempts {meta.attempts}, {meta.error_kind}{due}")
            copies.append(f"{_role(run.topics, topic)} ({about})")
    return (f"  {message.label:<11} deliver: {', '.join(outcomes):<22} "
            f"copies: {'; '.join(copies) or 'none'}")


def try_it(process) -> None:
    """Send three events through `process` (one healthy, one whose downstream fails once, one of
    an unknown type) and print what became of each. Takes a few seconds."""
    session = _Session(process)
    try:
        run = session.scenario(_try_messages(), TRY_DELAY_MS)
        print(f"3 events, lab.max_attempts = {MAX_ATTEMPTS}, lab.delay_ms(1) = {TRY_DELAY_MS} ms")
        for message in run.messages:
            print(_trail(run, message))
        for record, text in run.escapes:
            print(f"FAIL: {session.name} let {text} escape on {record.value[:40]!r}")
        print("expected: welcome delivered; fails-once transient, copied to lab.topics.retry(1) "
              "due 300 ms later, then delivered; fax fatal, copied to lab.topics.dlt")
    except CheckFailed as exc:
        print(f"FAIL: {exc}")
    finally:
        session.close()
