"""The map of the suite: one number per topic, shared by its notebook, lab, solution and checks.

Notebook 00 and the README show it; a topic is "ready" once its notebook exists in the project.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Topic:
    number: str
    slug: str
    title: str
    covers: str


TOPICS = (
    Topic("00", "start-here", "Start here", "which services are real or embedded, how the suite works, progress"),
    Topic("01", "event-loop-and-streaming", "Event loop blocking vs streaming",
          "blocking the loop, streaming uploads, offloading, job queues, concurrency limits, scaling out"),
    Topic("02", "uploads-and-presigned-urls", "File uploads and presigned URLs",
          "multipart streaming, limits, type checks, S3 presigned uploads and signed downloads"),
    Topic("03", "events-and-pubsub", "Event emitters and pub/sub",
          "errors in handlers, in-process pub/sub vs Redis pub/sub vs Kafka"),
    Topic("04", "slow-endpoint", "Diagnosing a slow endpoint",
          "N+1 queries, missing indexes, pagination, blocking code, middleware, slow downstreams"),
    Topic("05", "caching", "Caching with Redis",
          "cache-aside, TTL, key design, invalidation, stampedes, in-process vs Redis, Redis down"),
    Topic("06", "rate-limiting", "Rate limiting",
          "algorithms, in memory vs Redis across instances, races, 429 and Retry-After, whom to count, "
          "Redis down"),
    Topic("07", "kafka-retries", "Kafka retries and dead letters",
          "retries, backoff, dead-letter topics, a notification router"),
    Topic("08", "realtime-notifications", "Real-time notifications",
          "Kafka to WebSocket, offline users, read/unread"),
    Topic("09", "refresh-tokens", "Refresh tokens", "HttpOnly cookies, rotation with reuse detection, revocation"),
    Topic("10", "sso-and-jwks", "SSO and JWKS", "Cognito and Azure AD federation, validating JWTs against JWKS"),
    Topic("11", "mock-interview", "Mock interview", "timed questions across all topics, model answers, progress"),
)


def project_root(start: Path | None = None) -> Path | None:
    """The repository holding notebooks/: at or above `start` (default: the working directory),
    else the one this package was installed from (a learner's workspace may be anywhere)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[1]):
        if (folder / "notebooks").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return None


def notebook_path(topic: Topic, kind: str = "notebooks", root: Path | None = None) -> Path | None:
    """Where the topic's notebook (or lab, or solution) lives, if it exists."""
    root = root or project_root()
    if root is None:
        return None
    path = root / kind / f"{topic.number}-{topic.slug}.ipynb"
    return path if path.is_file() else None


class NotebookMap:
    """The map as a table: shows as HTML in a notebook, text in a terminal."""

    def __init__(self, root: Path | None = None):
        self.root = root or project_root()
        self.rows = [(t, notebook_path(t, "notebooks", self.root) is not None,
                      notebook_path(t, "labs", self.root) is not None) for t in TOPICS]

    def ready(self) -> list[str]:
        return [t.number for t, has_notebook, _ in self.rows if has_notebook]

    def _repr_html_(self) -> str:
        body = []
        for topic, has_notebook, has_lab in self.rows:
            name = f"{topic.number}-{topic.slug}.ipynb"
            link = (f'<a href="{name}">{html.escape(topic.title)}</a>' if has_notebook
                    else html.escape(topic.title))
            status = "ready" + (" + lab" if has_lab else "") if has_notebook else "coming"
            body.append(f"<tr><td>{topic.number}</td><td>{link}</td><td>{html.escape(topic.covers)}</td>"
                        f"<td>{status}</td></tr>")
        return ("<table><thead><tr><th>#</th><th>notebook</th><th>covers</th><th>status</th></tr>"
                f"</thead><tbody>{''.join(body)}</tbody></table>")

    def __repr__(self) -> str:
        return "\n".join(f"{t.number}  {'ready ' if n else 'coming'}  {t.title}: {t.covers}"
                         for t, n, _ in self.rows)
