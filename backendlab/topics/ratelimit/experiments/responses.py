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
CLIENTS = ("polite", "hammering")
CLIENT_COLORS = (plots.PALETTE[3], plots.PALETTE[2])
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

    def successes(self, client: str) -> tuple[list[float], list[int]]:
        """(times in s, successes so far) at each of `client`'s successful requests."""
        times = [a.at for a in self.of(client) if a.status == 200]
        return times, list(range(1, len(times) + 1))

    def summary(self) -> dict:
        return {client: {"ok": self.count(client, 200), "refused_429": self.count(client, 429),
                         "seconds": round(max(a.at for a in self.of(client)), 2)}
                for client in CLIENTS}

    def plot(self):
        """Left: each client's successes over time against the number it needed. Right: its
        requests by status (log scale, so a few successes show beside hundreds of refusals)."""
        fig, (progress, sent) = plots.figure(ncols=2, width=11, height=3.8)
        for client, colour in zip(CLIENTS, CLIENT_COLORS):
            times, done = self.successes(client)
            progress.step([0] + times, [0] + done, where="post", linewidth=1.8, color=colour, label=client)
        plots.reference_line(progress, self.wanted, f"needed: {self.wanted}")
        progress.set_xlabel("time since start (s)")
        progress.set_ylabel("successful requests so far")
        progress.set_title("successes over time", fontsize=10)
        progress.legend(loc="lower right")
        counts = {name: {client: self.count(client, status) for client in CLIENTS}
                  for status, name in STATUS_NAMES.items()}
        for i, (name, per_client) in enumerate(counts.items()):
            rects = sent.bar([c + (i - 0.5) * 0.38 for c in range(len(CLIENTS))], list(per_client.values()),
                             0.38, label=name, color=STATUS_COLORS[name])
            sent.bar_label(rects, fontsize=9)
        sent.set_xticks(range(len(CLIENTS)), CLIENTS)
        sent.set_yscale("log")
        sent.set_ylim(0.8, 4 * max(max(c.values()) for c in counts.values()))
        sent.set_ylabel("requests (log scale)")
        sent.set_title("requests sent, by answer", fontsize=10)
        sent.legend(loc="upper left")
        finished = max(a.at for a in self.attempts)
        return plots.finish(fig, f"Both clients had their {self.wanted} successes within {finished:.1f} s; "
                                 f"hammering took {self.count('hammering', 429)} refusals, "
                                 f"polite {self.count('polite', 429)}")


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
                   for name in CLIENTS]
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
