"""The map of the suite: one number and one slug per topic, and where each of its parts lives.

A topic's code is the package `backendlab.topics.<slug>`: its domain modules, `server.py` (and
`labserver.py`, the lab's server), `experiments`, `checks` (the lab's checks, a package whose
`check()` runs them through `backendlab.checks.run_lab`) and `questions.yaml` (its question bank,
named by the slug). Its notebook, lab and solution are `notebooks/`, `labs/`, `solutions/`
`<number>-<file>.ipynb`, and its tests `tests/<slug>/`. Notebook 00, the README map, `serve`,
`bench`, the quiz and `make test TOPIC=NN` find a topic's parts here. A topic is "ready" once its
notebook exists in the project.
"""

from __future__ import annotations

import html
import importlib
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent / "topics"


@dataclass(frozen=True)
class Topic:
    number: str
    slug: str
    file: str
    title: str
    covers: str
    servers: dict[str, str] = field(default_factory=dict)  # serve NAME -> module in the package

    @property
    def package(self) -> str:
        return f"backendlab.topics.{self.slug}"

    @property
    def stem(self) -> str:
        """The notebook, lab and solution file name without `.ipynb`: '06-rate-limiting'."""
        return f"{self.number}-{self.file}"

    def has(self, module: str) -> bool:
        """Whether the topic's package holds `module` (a .py file or a subpackage)."""
        folder = PACKAGE / self.slug
        return (folder / f"{module}.py").is_file() or (folder / module / "__init__.py").is_file()

    def module(self, name: str):
        """Import `name` from the topic's package ('checks', 'server', 'bench', ...)."""
        return importlib.import_module(f"{self.package}.{name}")

    @property
    def questions(self) -> Path:
        return PACKAGE / self.slug / "questions.yaml"


TOPICS = (
    Topic("00", "start", "start-here", "Start here",
          "which services are real or embedded, how the suite works, progress"),
    Topic("01", "eventloop", "event-loop-and-streaming", "Event loop blocking vs streaming",
          "blocking the loop, streaming uploads, offloading, job queues, concurrency limits, scaling out",
          servers={"eventloop": "server", "csvlab": "labserver"}),
    Topic("02", "uploads", "uploads-and-presigned-urls", "File uploads and presigned URLs",
          "multipart streaming, limits, type checks, S3 presigned uploads and signed downloads",
          servers={"uploads": "server", "uploadlab": "labserver"}),
    Topic("03", "pubsub", "events-and-pubsub", "Event emitters and pub/sub",
          "errors in handlers, in-process pub/sub vs Redis pub/sub vs Kafka"),
    Topic("04", "slowendpoint", "slow-endpoint", "Diagnosing a slow endpoint",
          "N+1 queries, missing indexes, pagination, blocking code, middleware, slow downstreams"),
    Topic("05", "caching", "caching", "Caching with Redis",
          "cache-aside, TTL, key design, invalidation, stampedes, in-process vs Redis, Redis down",
          servers={"caching": "server"}),
    Topic("06", "ratelimit", "rate-limiting", "Rate limiting",
          "algorithms, in memory vs Redis across instances, races, 429 and Retry-After, whom to count, "
          "Redis down", servers={"ratelimit": "server"}),
    Topic("07", "kafkaretry", "kafka-retries", "Kafka retries and dead letters",
          "retries, backoff, dead-letter topics, a notification router",
          servers={"notifications": "server"}),
    Topic("08", "realtime", "realtime-notifications", "Real-time notifications",
          "Kafka to WebSocket, offline users, read/unread"),
    Topic("09", "refreshtokens", "refresh-tokens", "Refresh tokens",
          "HttpOnly cookies, rotation with reuse detection, revocation"),
    Topic("10", "sso", "sso-and-jwks", "SSO and JWKS",
          "Cognito and Azure AD federation, validating JWTs against JWKS"),
    Topic("11", "interview", "mock-interview", "Mock interview",
          "timed questions across all topics, model answers, progress"),
)


def topic(key: str) -> Topic:
    """The topic with this number ('06', '6') or slug ('ratelimit'); KeyError names the known ones."""
    for candidate in TOPICS:
        if key in (candidate.number, candidate.slug) or key == candidate.number.lstrip("0"):
            return candidate
    known = ", ".join(f"{t.number} ({t.slug})" for t in TOPICS)
    raise KeyError(f"no topic {key!r}; topics: {known}")


def built() -> list[Topic]:
    """The topics whose package exists."""
    return [t for t in TOPICS if (PACKAGE / t.slug / "__init__.py").is_file()]


def servers() -> dict[str, str]:
    """Every topic server: `serve` name -> module path."""
    return {name: f"{t.package}.{module}" for t in built() for name, module in t.servers.items()}


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
    path = root / kind / f"{topic.stem}.ipynb"
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
            name = f"{topic.stem}.ipynb"
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
