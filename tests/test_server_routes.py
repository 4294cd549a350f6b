"""What a server says about itself: `serve` prints its URL and routes at start, the rate limiter's
`GET /` names its routes and which one is limited, and a port in use is one clear line."""

import socket
import subprocess
import sys

import httpx
import pytest

from backendlab import servers
from backendlab.servers import start_server
from backendlab.topics.ratelimit import server as ratelimit

RATELIMIT_LINE = ("with routes GET / (the routes), GET /api/data (limited), GET /health (never "
                  "limited), GET /stats (admitted and refused counts)")


@pytest.mark.parametrize("name", sorted(servers.SERVERS))
def test_every_server_has_a_start_line_with_its_url(name):
    line = servers.start_line(name, 8123)
    assert line.startswith(f"{name}: serving http://127.0.0.1:8123")
    routes = getattr(servers.module(name), "ROUTES", None)
    assert line.endswith(servers.describe_routes(routes) if routes else "8123")


def test_routes_are_described_on_one_line_with_their_notes():
    assert servers.describe_routes({"GET /a": "a note", "GET /b": ""}) == "GET /a (a note), GET /b"


@pytest.fixture(scope="module")
def limited():
    with start_server("ratelimit", points=5, duration=30, key="user") as server:
        yield server


def test_serve_prints_the_url_and_the_routes_at_start(limited):
    assert f"ratelimit: serving {limited.url} {RATELIMIT_LINE}" in limited.process.output()


def test_the_index_names_the_routes_the_limited_one_and_the_rule(limited):
    answer = httpx.get(limited.url + "/")
    assert answer.status_code == 200
    assert answer.json() == {
        "routes": ratelimit.ROUTES, "limited": "GET /api/data",
        "rule": {"points": 5, "duration_s": 30.0, "block_s": 0, "algorithm": "sliding_log",
                 "key": "user", "store": "memory"}}
    assert "ratelimit-limit" not in answer.headers


def test_the_index_of_api_key_plans_shows_the_plans():
    with start_server("ratelimit", key="api-key", plans="free:2,pro:4") as server:
        rule = httpx.get(server.url + "/").json()["rule"]
    assert rule["plans"] == {"free": 2, "pro": 4} and "points" not in rule


def test_a_server_without_an_index_prints_its_routes_too():
    with start_server("eventloop") as server:
        output = server.process.output()
    assert f"eventloop: serving {server.url} with routes GET /health (" in output


def test_a_port_in_use_is_one_line_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "backendlab", "serve", "ratelimit", "--port",
                               str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: port {port} on 127.0.0.1 is in use: pick another "
                                   "with --port N")
