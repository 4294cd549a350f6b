"""Every server speaks one error vocabulary: a JSON body `{"error": ..., **fields}` for a refusal
(`Rejected`), for a route or a method it does not have (naming its routes), and for a crash; and
a bad option on the command line is one line and exit code 2, before anything starts."""

import asyncio
import contextlib
import json
import pickle
import subprocess
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from backendlab import processes, servers
from backendlab.servers import flags
from backendlab.servers.errors import Rejected, handlers

ROUTES = {"GET /refuse": "a refusal", "GET /crash": ""}


async def refuse(_request):
    raise Rejected(429, "slow down", {"Retry-After": "3"}, key="user:ana")


async def crash(_request):
    raise RuntimeError("the disk\nis on fire")


async def leave(_request):
    raise ClientDisconnect()


def ask(app, method: str, path: str, headers: dict | None = None,
        lifespan: bool = False) -> httpx.Response:
    """One request to the ASGI `app` in this process (its lifespan around it when asked)."""
    async def request():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        running = app.router.lifespan_context(app) if lifespan else contextlib.nullcontext()
        async with running, httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            return await client.request(method, path, headers=headers)
    return asyncio.run(request())


@pytest.fixture(scope="module")
def toy():
    app = Starlette(routes=[Route("/refuse", refuse), Route("/crash", crash),
                            Route("/leave", leave, methods=["POST"])],
                    exception_handlers=handlers(ROUTES))
    return lambda method, path: ask(app, method, path)


def test_a_rejected_is_its_status_headers_and_one_body_with_its_fields(toy):
    answer = toy("GET", "/refuse")
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
    assert answer.json() == {"error": "slow down", "key": "user:ana"}


def test_a_missing_route_and_a_wrong_method_name_the_routes(toy):
    routes = "routes: GET /refuse (a refusal), GET /crash"
    missing, wrong = toy("GET", "/nope"), toy("DELETE", "/refuse")
    assert (missing.status_code, missing.json()) == (404, {"error": f"no route GET /nope; {routes}"})
    assert (wrong.status_code, wrong.json()) == (
        405, {"error": f"DELETE is not allowed on /refuse; {routes}"})


def test_a_crash_is_a_500_with_one_line_and_a_client_gone_a_bare_400(toy):
    crashed = toy("GET", "/crash")
    assert (crashed.status_code, crashed.json()) == (
        500, {"error": "internal error: RuntimeError: the disk is on fire"})
    gone = toy("POST", "/leave")
    assert (gone.status_code, gone.content) == (400, b"")


def test_a_rejected_survives_pickling_whole():
    copy = pickle.loads(pickle.dumps(Rejected(503, "busy", {"Retry-After": "1"}, queued=4)))
    assert (copy.status, copy.message, copy.headers, copy.body()) == (
        503, "busy", {"Retry-After": "1"}, {"error": "busy", "queued": 4})


# Each server, in process ------------------------------------------------------------------------

def handler_file(folder, source: str) -> str:
    path = folder / "handler.py"
    path.write_text(source)
    return f"{path}:handler"


def server_argv(name: str, folder) -> list[str]:
    """The options each server needs to build its app without any service behind it."""
    dead = f"127.0.0.1:{processes.free_port()}"
    return {
        "eventloop": [],
        "csvlab": ["--handler", handler_file(folder, "async def handler(chunks):\n    return {}\n")],
        "uploads": ["--upload-dir", str(folder)],
        "uploadlab": ["--folder", str(folder), "--handler", handler_file(folder, (
            "from backendlab.servers.errors import Rejected\n"
            "async def handler(chunks, content_type, folder, limits):\n"
            "    raise Rejected(413, 'the file is over the limit')\n"))],
        "caching": ["--tables", "t", "--namespace", "n", "--cache", "none",
                    "--database-url", f"sqlite:///{folder}/shop.db"],
        "ratelimit": ["--key", "user"],
        "notifications": ["--topic", "events", "--smtp", dead, "--bootstrap", dead],
        "proxy": ["--upstream", f"http://{dead}"],
    }[name]


# A request each server refuses with a `Rejected`: (method, path, headers, status, message start)
REFUSALS = {
    "eventloop": ("POST", "/upload/streamed", {"content-type": "text/plain"}, 415,
                  "expected Content-Type text/csv"),
    "csvlab": ("POST", "/upload", {}, 415, "send the CSV with Content-Type: text/csv"),
    "uploads": ("POST", "/upload", {}, 401, "send X-User: NAME"),
    "uploadlab": ("POST", "/upload", {}, 413, "the file is over the limit"),
    "caching": ("GET", "/products", {}, 400, "category is required"),
    "ratelimit": ("GET", "/api/data", {}, 401, "missing X-User-Id header"),
    "proxy": ("GET", "/anything", {}, 502, "upstream http://"),
}


@pytest.fixture
def client_of(monkeypatch, tmp_path):
    """`client_of(name)(method, path, headers)`: a request to server `name`'s app, built in this
    process from the options its command line gives, as a worker builds it. Only the proxy's
    lifespan runs (it makes the proxy's HTTP client), so no service is reached."""
    def build(name: str):
        options = vars(servers.parser_for(name).parse_args(server_argv(name, tmp_path)))
        options.pop("port"), options.pop("workers")
        monkeypatch.setenv("BACKENDLAB_SERVER_OPTIONS", json.dumps(options))
        app = servers.module(name).create_app()
        return lambda method, path, headers=None: ask(app, method, path, headers,
                                                      lifespan=name == "proxy")
    return build


def routes_of(name: str) -> str:
    return "routes: " + servers.describe_routes(servers.module(name).ROUTES)


@pytest.mark.parametrize("name", sorted(set(servers.SERVERS) - {"proxy"}))
def test_a_missing_route_is_a_json_404_naming_the_routes(client_of, name):
    answer = client_of(name)("GET", "/no-such-route")
    assert answer.status_code == 404
    assert answer.json() == {"error": f"no route GET /no-such-route; {routes_of(name)}"}


@pytest.mark.parametrize("name", sorted(servers.SERVERS))
def test_a_wrong_method_is_a_json_405_naming_the_routes(client_of, name):
    path = "/anything" if name == "proxy" else "/health"
    answer = client_of(name)("OPTIONS", path)
    assert answer.status_code == 405
    assert answer.json() == {"error": f"OPTIONS is not allowed on {path}; {routes_of(name)}"}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_each_servers_refusal_is_the_one_body(client_of, name):
    method, path, headers, status, message = REFUSALS[name]
    answer = client_of(name)(method, path, headers)
    assert answer.status_code == status
    assert set(answer.json()) == {"error"} and answer.json()["error"].startswith(message)


def test_every_server_is_in_these_tests():
    assert set(REFUSALS) | {"notifications"} == set(servers.SERVERS)


# Options ----------------------------------------------------------------------------------------

def test_a_switch_is_said_either_way():
    parser = servers.parser_for("notifications")
    required = ["--topic", "t", "--smtp", "h:1"]
    assert parser.parse_args(required).jitter is True
    assert parser.parse_args([*required, "--no-jitter"]).jitter is False


@pytest.mark.parametrize("name", ["eventloop", "ratelimit", "uploads"])
def test_the_defaults_are_written_once_in_the_options_dataclass(name):
    options_class = servers.module(name).Options
    parsed = vars(servers.parser_for(name).parse_args([]))
    assert flags.from_options(options_class, parsed) == options_class()



BAD_OPTIONS = [
    ("eventloop", ["--max-bytes", "lots"], "--max-bytes: expected a whole number of at least 1, "
                                           "got 'lots'"),
    ("uploads", ["--max-files", "-1"], "--max-files: expected a whole number of at least 0, "
                                       "got '-1'"),
    ("uploads", ["--read-timeout", "0"], "--read-timeout: expected a number above 0, got '0'"),
    ("caching", ["--tables", "t", "--namespace", "n", "--ttl", "soon"],
     "--ttl: expected a number above 0, got 'soon'"),
    ("ratelimit", ["--points", "ten"], "--points: expected a whole number of at least 1, "
                                       "got 'ten'"),
    ("notifications", ["--topic", "t", "--smtp", "h:1", "--max-attempts", "0"],
     "--max-attempts: expected a whole number of at least 1, got '0'"),
    ("proxy", ["--upstream", "ftp://x"], "--upstream takes comma-separated http:// URLs"),
    *[(name, ["--port", "zero"], "--port: expected a whole number of at least 1, got 'zero'")
      for name in sorted(servers.SERVERS)],
]


@pytest.mark.parametrize("name, argv, message", BAD_OPTIONS)
def test_a_bad_option_is_one_line_and_exit_code_2(capsys, name, argv, message):
    with pytest.raises(SystemExit) as stopped:
        servers.parser_for(name).parse_args(argv)
    (line,) = capsys.readouterr().err.splitlines()
    assert stopped.value.code == 2
    assert line.startswith(f"backendlab serve {name}: error: argument ") and message in line
    assert line.endswith(f"(options: backendlab serve {name} --help)")


def test_serve_with_a_bad_option_prints_one_line_and_no_traceback():
    done = subprocess.run([sys.executable, "-m", "backendlab", "serve", "ratelimit", "--points",
                           "ten"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "backendlab serve ratelimit: error: argument --points: expected a whole number of at "
        "least 1, got 'ten' (options: backendlab serve ratelimit --help)"]
