"""Experiment 4: what a refused client is told (429, Retry-After, RateLimit-* headers), a client
that honours it vs one that hammers, and a block duration."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from backendlab import plots
from backendlab.topics.ratelimit.experiments.common import run_prefix
from backendlab.servers import start_server

STATUS_NAMES = {200: "200 OK", 429: "429 Too Many Requests"}
STATUS_COLORS = {"200 OK": plots.PALETTE[1], "429 Too Many Requests": plots.PALETTE[0]}
TIME_LIMIT = 30.0


@dataclass
class Attempt:
    client: str
    at: float
    status: int
    headers: dict


@dataclass
class ClientRun:
    """Two clients that each need `wanted` successful requests from the same limited API."""

    wanted: int
    attempts: list[Attempt]

    def of(self, client: str) -> list[Attempt]:
        return [a for a in self.attempts if a.client == client]

    def count(self, client: str, status: int) -> int:
        return sum(a.status == status for a in self.of(client))

    @property
    def first_429(self) -> dict:
        """The rate-limit headers of the first refusal."""
        first = next(a for a in self.attempts if a.status == 429)
        return {k: v for k, v in first.headers.items()
                if k.startswith("ratelimit-") or k == "retry-after"}

    def timeline(self) -> list[tuple]:
        """(lane, start, end, outcome) per request: the figure's bars."""
        return [(a.client, a.at, a.at + 0.02, STATUS_NAMES.get(a.status, str(a.status)))
                for a in self.attempts]

    def summary(self) -> dict:
        return {client: {"ok": self.count(client, 200), "refused_429": self.count(client, 429),
                         "seconds": round(max(a.at for a in self.of(client)), 2)}
                for client in ("polite", "hammering")}

    def plot(self):
        """Each client's requests over time, coloured by status."""
        return plots.request_timeline({"each request of each client": self.timeline()},
                                      colors=STATUS_COLORS, title="Honouring Retry-After vs hammering")


def _until_done(url: str, user: str, wanted: int, polite: bool, t0: float,
                out: list[Attempt], lock: threading.Lock) -> None:
    """Request until `wanted` succeed: after a 429, sleep Retry-After (polite) or 5 ms."""
    done = 0
    with httpx.Client(timeout=10, headers={"X-User-Id": user}) as client:
        while done < wanted and time.perf_counter() - t0 < TIME_LIMIT:
            response = client.get(url)
            with lock:
                out.append(Attempt(user, time.perf_counter() - t0, response.status_code,
                                   dict(response.headers)))
            if response.status_code == 200:
                done += 1
            else:
                time.sleep(float(response.headers.get("retry-after", 1)) if polite else 0.005)


def retry_after(points: int = 4, duration: float = 1.0, wanted: int = 10) -> ClientRun:
    """A polite and a hammering client, each as its own user, against a Redis limiter of
    `points` per `duration` s per user, until each has `wanted` successful requests."""
    with run_prefix() as prefix, start_server("ratelimit", store="redis", key="user",
                                              points=points, duration=duration,
                                              prefix=prefix) as server:
        attempts: list[Attempt] = []
        lock = threading.Lock()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=_until_done, args=(server.url + "/api/data", name,
                                                              wanted, name == "polite", t0,
                                                              attempts, lock))
                   for name in ("polite", "hammering")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return ClientRun(wanted, sorted(attempts, key=lambda a: a.at))


@dataclass
class BlockRun:
    """Requests against a rule with a block duration: (seconds from start, status, Retry-After)."""

    points: int
    duration: float
    block: float
    attempts: list[tuple[float, int, str | None]]

    @property
    def statuses(self) -> list[int]:
        return [status for _, status, _ in self.attempts]

    def summary(self) -> list[str]:
        return [f"t={t:4.2f}s  {status}  Retry-After: {retry or '-'}"
                for t, status, retry in self.attempts]


def block_duration(points: int = 3, duration: float = 0.3, block: float = 2.0) -> BlockRun:
    """`points` + 1 quick requests (the last goes over), then one after the window has passed (the
    block has not), then one after the block."""
    with run_prefix() as prefix, start_server("ratelimit", store="redis", key="user",
                                              points=points, duration=duration, block=block,
                                              prefix=prefix) as server, \
            httpx.Client(base_url=server.url, headers={"X-User-Id": "eager"}) as client:
        attempts = []
        t0 = time.perf_counter()
        for pause in [0] * (points + 1) + [duration + 0.2, block]:
            time.sleep(pause)
            response = client.get("/api/data")
            attempts.append((time.perf_counter() - t0, response.status_code,
                             response.headers.get("retry-after")))
    return BlockRun(points, duration, block, attempts)
