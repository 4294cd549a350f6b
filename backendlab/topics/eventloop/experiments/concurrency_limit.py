"""Experiment 3a: many users at once against a server that parses at most a few uploads at a time
and refuses the rest with 503 + Retry-After."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from backendlab import datasets, progressbar
from backendlab.topics.eventloop.experiments.common import CSV_HEADERS, MB, spool_server


@dataclass
class Attempt:
    """One request of one user: when it started and ended (s from the start), and its answer."""

    user: int
    start: float
    end: float
    status: int
    retry_after: str | None = None
    body: dict = field(default_factory=dict)


@dataclass
class LimitResult:
    """Users uploading at once to a server that processes at most `limit` uploads at a time."""

    users: int
    limit: int
    attempts: list[Attempt]
    max_in_flight: int
    leftover_files: int

    @property
    def refused(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 503]

    @property
    def succeeded_users(self) -> int:
        return len({a.user for a in self.attempts if a.status == 200})

    @property
    def seconds(self) -> float:
        return max(a.end for a in self.attempts)

    def timeline(self) -> list[tuple]:
        """(user, start, end, outcome) per attempt: its lanes in the `ManyUsers` figure."""
        names = {200: "200 OK", 503: "503 + Retry-After"}
        return [(a.user, a.start, a.end, names.get(a.status, str(a.status))) for a in self.attempts]

    def summary(self) -> dict:
        return {"users": self.users, "limit": self.limit, "attempts": len(self.attempts),
                "refused_503": len(self.refused), "users_done": self.succeeded_users,
                "server_max_in_flight": self.max_in_flight, "seconds": round(self.seconds, 2),
                "leftover_files": self.leftover_files}


def _user_with_retries(url: str, data: bytes, user: int, t0: float, gate: threading.Barrier,
                       rng: random.Random, max_attempts: int) -> list[Attempt]:
    """Upload until accepted, waiting Retry-After (plus jitter, so retries do not arrive together)."""
    attempts = []
    gate.wait()
    with httpx.Client(timeout=60) as client:
        for _ in range(max_attempts):
            start = time.perf_counter() - t0
            response = client.post(url, content=data, headers=CSV_HEADERS)
            retry_after = response.headers.get("retry-after")
            attempts.append(Attempt(user, start, time.perf_counter() - t0, response.status_code,
                                    retry_after, response.json()))
            if response.status_code != 503:
                break
            time.sleep(float(retry_after or 1) + rng.uniform(0, 0.5))
    return attempts


def concurrency_limit(users: int = 12, limit: int = 3, file_mb: float = 4, *,
                      max_attempts: int = 10, seed: int = 0,
                      progress: bool = True) -> LimitResult:
    """All users upload at once (streamed parse) to a server with --max-concurrent `limit`."""
    data, _ = datasets.generate(int(file_mb * MB))
    with spool_server(max_concurrent=limit, retry_after=1) as (server, spool), \
            progressbar.progress(users, "users done", progress) as bar:
        gate = threading.Barrier(users)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(users) as pool:
            futures = [pool.submit(_user_with_retries, f"{server.url}/upload/streamed", data, user,
                                   t0, gate, random.Random(seed + user), max_attempts)
                       for user in range(users)]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            attempts = [a for f in futures for a in f.result()]
        stats = httpx.get(server.url + "/stats").json()
        leftover = len(list(spool.iterdir()))
    return LimitResult(users, limit, attempts, stats["max_in_flight"], leftover)
