"""The server runner: starts the experiment servers, ASGI apps, as real uvicorn processes.

A server is a module of a topic's package (`server.py`, `labserver.py`; the catalog names them) or
the kit's `proxy`. Each defines `add_arguments(parser)` (its options, shown by
`backendlab serve NAME --help`) and `create_app()` (an ASGI app factory that reads those
options with `options()`). It may also define `prepare(options) -> options` (run once before the
workers start, e.g. to find a service they share), `UVICORN_OPTIONS` (extra `uvicorn.run`
arguments) and `SINGLE_WORKER = True` (its state lives in one process's memory, so more than one
worker is refused). It may define `ROUTES`, {"METHOD /path": "a short note"}: `serve` prints them
with the URL at start, `errors.handlers` names them in a 404 or 405, and `index` answers them on
`GET /`.

The kit gives every server the same parts: `flags` (an options dataclass: the flags, their
defaults and validators, read back by `create_app`), `errors` (`Rejected`, the exception handlers
and the one JSON error body) and `shared_service` (a service found once in `prepare`, so that
every worker uses the same one).
A learner runs one from a shell with `backendlab serve NAME --port N [options]`; a
notebook with `start_server(NAME, ...)`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from backendlab import catalog, processes

# The kit's own server (a reverse proxy any topic can put in front of its instances), then each
# topic's, as the catalog lists them.
SERVERS: dict[str, str] = {"proxy": "backendlab.servers.proxy", **catalog.servers()}

_OPTIONS_VAR = "BACKENDLAB_SERVER_OPTIONS"
_MODULE_VAR = "BACKENDLAB_SERVER_MODULE"


def module(name: str):
    """The module of server `name`, with a clear error for an unknown name."""
    if name not in SERVERS:
        raise KeyError(f"unknown server {name!r}; known: {', '.join(sorted(SERVERS))}")
    return importlib.import_module(SERVERS[name])


def options() -> dict:
    """The options the running server was started with (read by `create_app`)."""
    return json.loads(os.environ.get(_OPTIONS_VAR, "{}"))


def check_workers(name: str, workers: int) -> None:
    """ValueError when server `name` declares `SINGLE_WORKER` and `workers` is not 1: requests
    spread over workers would miss the state that lives in one of them."""
    if workers != 1 and getattr(module(name), "SINGLE_WORKER", False):
        raise ValueError(f"server {name} runs in one process only (its state lives in that "
                         f"process's memory): run it with 1 worker, not {workers}")


def shared_service(find: Callable[[], str], says: str) -> str:
    """The address `find()` resolves (`backendlab.services.redis_url`, say), for `prepare` to
    hand to every worker: found once, before they start, they share one service instead of each
    starting an embedded one. `says` is printed with the address ('caching: cache in Redis at');
    a configured service that does not answer stops the server with its one-line fix."""
    from backendlab.services import ServiceUnavailable

    try:
        address = find()
    except ServiceUnavailable as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{says} {address}", file=sys.stderr)
    return address


def describe_routes(routes: dict[str, str]) -> str:
    """The routes on one line, each with its note: 'GET /api/data (limited), GET /health (...)'."""
    return ", ".join(f"{route} ({note})" if note else route for route, note in routes.items())


def start_line(name: str, port: int) -> str:
    """What `serve` prints at start: the server's URL, and its routes when it declares them."""
    url = f"{name}: serving http://127.0.0.1:{port}"
    routes = getattr(module(name), "ROUTES", None)
    return f"{url} with routes {describe_routes(routes)}" if routes else url


def index(routes: dict[str, str], **facts):
    """A `GET /` route answering 200 with JSON {"routes": routes, **facts}, so a learner who opens
    the server's URL learns what to call instead of getting a 404."""
    from starlette.responses import JSONResponse  # here: notebooks import this module too
    from starlette.routing import Route

    async def answer(_request):
        return JSONResponse({"routes": routes, **facts})
    return Route("/", answer)


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage error is one line (what is wrong, where to read more),
    not the whole usage block above it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (options: {self.prog} --help)\n")


def parser_for(name: str) -> argparse.ArgumentParser:
    """The command line of `serve NAME`: the port and workers, then the server's own options."""
    from backendlab.servers.flags import whole_number

    parser = _OneLineParser(prog=f"backendlab serve {name}",
                            description=(module(name).__doc__ or "").strip())
    parser.add_argument("--port", type=whole_number(1), default=8000)
    parser.add_argument("--workers", type=whole_number(1), default=1,
                        help="uvicorn worker processes sharing the port")
    module(name).add_arguments(parser)
    return parser


def serve(name: str, argv: list[str]) -> None:
    """Run server `name` in the foreground with uvicorn (the `serve` command)."""
    import uvicorn

    server = module(name)
    args = vars(parser_for(name).parse_args(argv))
    port, workers = args.pop("port"), args.pop("workers")
    try:
        check_workers(name, workers)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if processes.port_open("127.0.0.1", port):
        raise SystemExit(f"error: port {port} on 127.0.0.1 is in use: pick another with --port N")
    if hasattr(server, "prepare"):
        args = server.prepare(args)
    print(start_line(name, port), file=sys.stderr, flush=True)
    os.environ[_OPTIONS_VAR] = json.dumps(args)
    os.environ[_MODULE_VAR] = SERVERS[name]
    uvicorn.run("backendlab.servers:worker_app", factory=True, host="127.0.0.1", port=port,
                workers=workers, log_level="warning", timeout_graceful_shutdown=2,
                **getattr(server, "UVICORN_OPTIONS", {}))


def worker_app():
    """The app factory uvicorn calls in each worker: the worker dies with its parent, then builds
    the named server's app (uvicorn's supervisor does not stop workers whose parent was killed)."""
    processes.die_with_parent()
    return importlib.import_module(os.environ[_MODULE_VAR]).create_app()


@dataclass
class RunningServer:
    """An experiment server running as a child process; stop it with `stop()` or a with-block."""

    name: str
    url: str
    process: processes.ManagedProcess

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(name: str, *, workers: int = 1, ready_path: str = "/health",
                 timeout: float = 30.0, **options) -> RunningServer:
    """Start server `name` on a free loopback port with `options` and wait until it answers."""
    check_workers(name, workers)
    port = processes.free_port()
    argv = [sys.executable, "-m", "backendlab", "serve", name, "--port", str(port),
            "--workers", str(workers)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag if value else "--no-" + flag.removeprefix("--")]
        else:
            argv += [flag, str(value)]
    proc = processes.start(f"server-{name}", argv, port=port).wait_for_port(timeout)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + ready_path, proc, timeout)
    return RunningServer(name, url, proc)


def start_together(stack: contextlib.ExitStack,
                   starters: dict[str, Callable[[], RunningServer]]) -> dict[str, RunningServer]:
    """Run every starter at once (a server takes about a second to import and bind); each server
    that started is stopped when `stack` closes, also when another failed, whose error is raised."""
    with ThreadPoolExecutor(len(starters)) as pool:
        futures = {label: pool.submit(start) for label, start in starters.items()}
    started, failure = {}, None
    for label, future in futures.items():
        try:
            started[label] = stack.enter_context(future.result())
        except Exception as exc:
            failure = failure or exc
    if failure:
        raise failure
    return started


def worker_pids(url: str, workers: int, timeout: float = 15) -> set[int]:
    """GET `url` (an endpoint answering {"pid": ...}) on fresh connections until `workers`
    distinct worker processes have answered, or `timeout` passes; the pids seen."""
    import httpx  # here, not at the top: server processes import this module, and need no client

    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < workers and time.monotonic() < deadline:
        with ThreadPoolExecutor(workers * 2) as pool:
            pids |= set(pool.map(lambda _: httpx.get(url).json()["pid"], range(workers * 4)))
    return pids


def _wait_http(url: str, proc: processes.ManagedProcess, timeout: float) -> None:
    import httpx  # here, not at the top: server processes import this module, and need no client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if not proc.alive():
            break
        time.sleep(0.05)
    out = proc.output()
    proc.stop()
    raise processes.ProcessFailed(f"server did not answer {url} within {timeout}s:\n{out}")
