"""Notification microservice for notebook 07: a Kafka consumer routes events to email or WebSocket.

    backendlab serve notifications --port 8000 --topic events --smtp 127.0.0.1:1025 \\
        [--bootstrap HOST:PORT] [--group G] [--max-attempts 4] [--base-ms 500] [--cap-ms 10000] \\
        [--no-jitter]

It consumes --topic and its retry topics `<topic>.retry.1` .. `<topic>.retry.<max-attempts - 1>`
and dead-letters to `<topic>.dlt`; at start it creates those that are missing and says which. The
broker is --bootstrap, else KAFKA_BOOTSTRAP_SERVERS, else the embedded broker of the notebook that
starts this server; with none of them it starts an embedded broker of its own, prints its address
(produce your events there) and stops it with the server. Each event is JSON `{"id", "type":
"email" | "push", "user", ...}`: an email (`to`, `subject`, `body`) goes over SMTP to --smtp; a
push goes as JSON text to every WebSocket connection of `user`. An offline user or an SMTP server
that is down or busy (4xx) is retried with exponential backoff, then dead-lettered; an unknown type, a bad payload or a 5xx answer goes to the DLT at once.

Endpoints:
  GET /            the routes, the topics consumed, the dead-letter topic, the broker
  GET /health      200 while the consumer runs; 503 with the error if it stopped
  GET /stats       handled per type, retried, dead_lettered, connected_users, connections
  WS  /ws/{user}   a user's push channel. A user id that is not 1-64 letters, digits, '_' or '-'
                   is closed with code 1008 and the rule as reason. The server first sends
                   {"type": "welcome", "user": ...} (from then on pushes reach this socket), then
                   each push. The socket is push-only: a client message is answered with
                   {"type": "error", "error": ...} and otherwise ignored.

It runs with one worker only (--workers 2 is refused): the connections a push needs live in the
worker's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from backendlab import servers
from backendlab.servers.errors import handlers
from backendlab.servers.flags import (add_flags, checked, from_options, host_port, option,
                                      whole_number)
from backendlab.topics.kafkaretry import (Backoff, RetryPolicy, RetryTopics, create_topics,
                                          list_topics)
from backendlab.topics.kafkaretry.quiet import quiet_logger
from backendlab.topics.kafkaretry.topics import check_name
from backendlab.topics.kafkaretry.notifications.events import USER_ID_RULE, valid_user
from backendlab.topics.kafkaretry.notifications.mail import EmailHandler
from backendlab.topics.kafkaretry.notifications.router import NotificationRouter
from backendlab.topics.kafkaretry.notifications.service import NotificationConsumer
from backendlab.topics.kafkaretry.notifications.websocket import CLOSED, WebSocketHandler

ROUTES = {"GET /": "the routes", "GET /health": "the consumer's state",
          "GET /stats": "deliveries, retries, dead letters", "WebSocket /ws/{user}": "a user's pushes"}
PUSH_ONLY = "this socket only delivers notifications; messages from clients are ignored"
# Clients send nothing here: a large frame is refused by uvicorn instead of buffered.
UVICORN_OPTIONS = {"ws_max_size": 64 * 1024}
SINGLE_WORKER = True  # a user's connections live in one worker: another could not push to them


@dataclass(frozen=True)
class Options:
    """What the service consumes, where it sends email, and how it retries; each a flag."""

    topic: str = option(help="the events topic (created at start with its retry and dead-letter "
                             "topics when missing)", parse=checked(check_name))
    smtp: str = option(help="HOST:PORT of the SMTP server emails go to", parse=host_port)
    bootstrap: str | None = option(None, "Kafka bootstrap HOST:PORT (default: "
                                         "KAFKA_BOOTSTRAP_SERVERS, the embedded broker of the "
                                         "notebook that starts this server, else an embedded "
                                         "broker that stops with this server)", parse=host_port)
    group: str | None = option(None, "consumer group (default: notifications-<topic>)")
    max_attempts: int = option(4, "attempts per event, the first included, before the DLT",
                               parse=whole_number(1))
    base_ms: int = option(500, "backoff before the first retry; doubles for each next one",
                          parse=whole_number(0))
    cap_ms: int = option(10_000, "the longest backoff", parse=whole_number(0))
    jitter: bool = option(True, "full jitter on each backoff (--no-jitter: exact delays)")


def add_arguments(parser) -> None:
    add_flags(parser, Options)


def retry_topics(options: Options) -> RetryTopics:
    return RetryTopics(options.topic, options.max_attempts - 1)


class TopicsNotCreated(Exception):
    """The broker answers but did not create some of the topics the server needs."""


async def _missing(bootstrap: str, names: list[str]) -> list[str]:
    existing = await list_topics(bootstrap)
    return [name for name in names if name not in existing]


async def _create_missing(bootstrap: str, needed: list[str]) -> list[str]:
    """Create those of `needed` the broker lacks; the names created. A topic another process
    created meanwhile is fine: only topics still missing afterwards are an error."""
    with quiet_logger("aiokafka"):  # its own connect errors: ours says it
        missing = await _missing(bootstrap, needed)
        if missing:
            try:
                await create_topics(bootstrap, missing)
            except Exception as exc:
                still = await _missing(bootstrap, missing)
                if still:
                    raise TopicsNotCreated(f"{', '.join(still)} ({exc})") from None
        return missing


def _suite_broker() -> str:
    """The broker to consume from when --bootstrap is not given: KAFKA_BOOTSTRAP_SERVERS, the one
    a notebook shares with its servers, else a new embedded one, whose address is printed: the
    learner produces to it, and it stops with this server."""
    from backendlab.services import ServiceUnavailable
    from backendlab.services.kafka import existing_broker, service

    starts_one = existing_broker() is None
    try:
        with quiet_logger("aiokafka"):  # its connect errors: the service's message says it
            address = service.address()
    except ServiceUnavailable as exc:
        raise SystemExit(f"error: {exc}") from None
    if starts_one:
        print(f"notifications: no Kafka broker configured, so this server started an embedded "
              f"one at {address} (it stops with the server): produce your events to "
              f"bootstrap_servers={address!r}", file=sys.stderr)
    return address


def prepare(opts: dict) -> dict:
    """Before serving: find the broker and create the topics it lacks, each failure one line with
    the fix."""
    if not opts["bootstrap"]:
        opts["bootstrap"] = _suite_broker()
    bootstrap, needed = opts["bootstrap"], retry_topics(from_options(Options, opts)).all()
    try:
        created = asyncio.run(asyncio.wait_for(_create_missing(bootstrap, needed), 20))
    except TopicsNotCreated as exc:
        raise SystemExit(f"error: Kafka at {bootstrap} did not create the topics {exc}. Fix: "
                         "create them with your broker's tools, or pass another --topic.") from None
    except Exception as exc:
        raise SystemExit(
            f"error: Kafka at {bootstrap} does not answer ({type(exc).__name__}: {exc}). Fix: "
            "start the broker (`docker compose up -d kafka`), or pass --bootstrap with the "
            "address of a running one.") from None
    if created:
        print(f"notifications: created topics {', '.join(created)} on {bootstrap}",
              file=sys.stderr)
    print(f"notifications: consuming {opts['topic']} on {bootstrap}, email to {opts['smtp']}",
          file=sys.stderr)
    return opts


class NotificationApp:
    """The service's endpoints around its consumer, email handler and WebSocket connections."""

    def __init__(self, options: Options):
        smtp_host, _, smtp_port = options.smtp.rpartition(":")
        self.pushes = WebSocketHandler()
        self.router = NotificationRouter({"email": EmailHandler(smtp_host, int(smtp_port)),
                                          "push": self.pushes})
        policy = RetryPolicy(options.max_attempts, Backoff(base_ms=options.base_ms,
                                                           cap_ms=options.cap_ms,
                                                           jitter=options.jitter))
        self.consumer = NotificationConsumer(
            options.bootstrap, retry_topics(options), self.router, policy,
            options.group or f"notifications-{options.topic}")

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        await self.consumer.start()
        try:
            yield
        finally:
            await self.consumer.stop()
            print(f"notifications: stopped consuming {self.consumer.topics.source}",
                  file=sys.stderr)

    async def health(self, _request: Request) -> Response:
        if not self.consumer.running:
            error = self.consumer.error
            detail = f"{type(error).__name__}: {error}" if error else "not running"
            return JSONResponse({"status": "error", "error": f"the consumer stopped: {detail}"},
                                status_code=503)
        return JSONResponse({"status": "ok", "topic": self.consumer.topics.source,
                             "pid": os.getpid()})

    async def stats(self, _request: Request) -> Response:
        routes = self.consumer.routes
        return JSONResponse({"handled": dict(self.router.delivered), "retried": routes["retry"],
                             "dead_lettered": routes["fatal"] + routes["exhausted"],
                             "connected_users": self.pushes.users,
                             "connections": self.pushes.sockets})

    async def socket(self, websocket: WebSocket) -> None:
        user = websocket.path_params["user"]
        await websocket.accept()  # before closing, so the client gets the code and the reason
        if not valid_user(user):
            await websocket.close(code=1008, reason=f"user id must be {USER_ID_RULE}")
            return
        self.pushes.add(user, websocket)
        try:
            await websocket.send_json({"type": "welcome", "user": user})
            while (await websocket.receive())["type"] != "websocket.disconnect":
                await websocket.send_json({"type": "error", "error": PUSH_ONLY})
        except CLOSED:  # the client went away while we answered it
            pass
        finally:
            self.pushes.remove(user, websocket)


def create_app() -> Starlette:
    options = from_options(Options)
    app = NotificationApp(options)
    topics = retry_topics(options)
    index = servers.index(ROUTES, consumes=[topics.source, *topics.retry_names],
                          dead_letters=topics.dlt, bootstrap=options.bootstrap, smtp=options.smtp)
    return Starlette(routes=[index, Route("/health", app.health), Route("/stats", app.stats),
                             WebSocketRoute("/ws/{user:path}", app.socket)],
                     lifespan=app.lifespan,
                     exception_handlers=handlers(ROUTES))
