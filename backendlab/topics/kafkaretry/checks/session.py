"""The session: one scenario run and one crash run of the learner's `process`, each made on first
use and shared by the checks that read them; closing it removes their Redis keys.
"""

from __future__ import annotations

import uuid

import redis

from backendlab.checks import CheckFailed
from backendlab.coroutines import run_coroutine
from backendlab.topics.kafkaretry.checks.crash import WORKER_LIMIT_S, CrashOutcome, crash_scenario
from backendlab.topics.kafkaretry.checks.harness import DELAY_MS
from backendlab.topics.kafkaretry.checks.learner import validate
from backendlab.topics.kafkaretry.checks.scenario import (Message, Observed, run_scenario,
                                                          scenario_messages)


class Session:
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

        validate(self.fn)
        self._connect()
        observed, unwritten = self._once("scenario", lambda: run_coroutine(run_scenario(
            self.fn, kafka_bootstrap(), self.client, f"{self.prefix}:scenario",
            messages or scenario_messages(), delay_ms), timeout=90))
        if unwritten is not None:
            raise CheckFailed(f"{self.name} is not written yet ({unwritten})")
        return observed

    def crash(self) -> CrashOutcome:
        """The crash check's outcome; CheckFailed when a run reported an error or stalled."""
        from backendlab.services.kafka import kafka_bootstrap

        validate(self.fn)
        self._connect()
        outcome = self._once("crash", lambda: run_coroutine(crash_scenario(
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
