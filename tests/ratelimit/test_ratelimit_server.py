"""The rate-limited API as a learner starts it: 429 with Retry-After and RateLimit headers, block
durations, whom it counts, clear answers to bad input and bad options, what it does when Redis is
down, and several workers sharing one Redis."""

import contextlib
import os
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from backendlab import processes
from backendlab.topics.ratelimit.experiments.common import start_all
from backendlab.topics.ratelimit.experiments.identities import send_from
from backendlab.servers import start_server, worker_pids

FRESH = httpx.Limits(max_keepalive_connections=0)  # a new connection, so any worker may answer


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backendlab", *args], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def per_user():
    with start_server("ratelimit", points=3, duration=60, key="user") as server:
        yield server


def as_user(server, user: str | None, path: str = "/api/data", method: str = "GET"):
    headers = {"X-User-Id": user} if user else {}
    return httpx.request(method, server.url + path, headers=headers)


def test_admitted_requests_carry_the_rate_limit_headers(per_user):
    answers = [as_user(per_user, "headers") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
    assert {a.headers["ratelimit-limit"] for a in answers} == {"3"}
    assert all(59 <= int(a.headers["ratelimit-reset"]) <= 60 for a in answers)
    assert "retry-after" not in answers[0].headers


def test_over_the_limit_is_429_with_retry_after_and_a_message(per_user):
    for _ in range(3):
        as_user(per_user, "eager")
    refused = as_user(per_user, "eager")
    assert refused.status_code == 429
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.json()["error"].startswith("Too Many Requests: over 3 requests per 60 s; "
                                              "retry after")
    assert as_user(per_user, "someone-else").status_code == 200


def test_health_and_stats_are_never_limited(per_user):
    for _ in range(5):
        as_user(per_user, "stats-user")
    assert all(as_user(per_user, None, "/health").status_code == 200 for _ in range(10))
    stats = as_user(per_user, None, "/stats").json()
    assert stats["admitted"] >= 3 and stats["refused"] >= 2


@pytest.mark.parametrize("user, status, message", [
    (None, 401, "missing X-User-Id header"),
    ("no spaces allowed", 400, "malformed X-User-Id"),
])
def test_a_bad_identity_gets_a_status_and_a_json_message(per_user, user, status, message):
    answer = as_user(per_user, user)
    assert answer.status_code == status and message in answer.json()["error"]


@pytest.mark.parametrize("method, path, status, message", [
    ("GET", "/nope", 404, "no route GET /nope"),
    ("POST", "/api/data", 405, "POST is not allowed on /api/data"),
])
def test_unknown_routes_and_methods_answer_json_naming_the_routes(per_user, method, path, status,
                                                                  message):
    answer = as_user(per_user, "u", path, method)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message) and "GET /api/data" in answer.json()["error"]


def test_api_key_plans_set_the_points_and_bad_keys_are_refused():
    with start_server("ratelimit", key="api-key", plans="free:2,pro:4", duration=60) as server:
        def admitted(key):
            return sum(httpx.get(server.url + "/api/data", headers={"X-API-Key": key})
                       .status_code == 200 for _ in range(6))

        assert admitted("free_" + "a" * 16) == 2
        assert admitted("free_" + "b" * 16) == 2
        assert admitted("pro_" + "c" * 16) == 4
        for headers, status in (({}, 401), ({"X-API-Key": "pro_x"}, 400),
                                ({"X-API-Key": "gold_" + "d" * 16}, 403)):
            answer = httpx.get(server.url + "/api/data", headers=headers)
            assert answer.status_code == status and answer.json()["error"]


def test_x_forwarded_for_counts_only_when_written_by_a_trusted_proxy():
    with start_server("ratelimit", points=1, duration=60, forwarded="trusted",
                      trusted_proxies="127.0.0.1") as trusting, \
            start_server("ratelimit", points=1, duration=60) as ignoring:
        trusted_url, ignoring_url = trusting.url + "/api/data", ignoring.url + "/api/data"
        # from the trusted proxy's address: each forwarded client has its own bucket
        assert send_from("127.0.0.1", trusted_url, 1, {"X-Forwarded-For": "192.0.2.1"}) == 1
        assert send_from("127.0.0.1", trusted_url, 1, {"X-Forwarded-For": "192.0.2.2"}) == 1
        # from anyone else the header is ignored: the peer is the client
        assert send_from("127.0.0.5", trusted_url, 2,
                         lambda i: {"X-Forwarded-For": f"192.0.2.{i + 10}"}) == 1
        # without --forwarded, not even uvicorn rewrites the peer from the header
        assert send_from("127.0.0.1", ignoring_url, 2,
                         lambda i: {"X-Forwarded-For": f"192.0.2.{i + 20}"}) == 1


def test_a_block_outlasts_the_window_and_then_ends():
    # Waits are measured from the answers, and the window (1 s) and the block (3 s) are far apart,
    # so a slow machine only shifts when each request goes out, not what it must get.
    with start_server("ratelimit", key="user", points=1, duration=1.0, block=3.0) as server:
        assert as_user(server, "b").status_code == 200
        window_from = time.monotonic()  # the window started before this moment
        over = as_user(server, "b")
        blocked_by = time.monotonic()  # the block started before this answer arrived
        assert over.status_code == 429 and over.headers["retry-after"] == "3"
        time.sleep(max(0.0, window_from + 1.2 - time.monotonic()))
        assert as_user(server, "b").status_code == 429, "the window passed, the block has not"
        time.sleep(max(0.0, blocked_by + 3.1 - time.monotonic()))
        assert as_user(server, "b").status_code == 200


@pytest.mark.parametrize("args, message", [
    (["--points", "0"], "--points: expected a whole number of at least 1, got '0'"),
    (["--points", "ten"], "--points: expected a whole number of at least 1, got 'ten'"),
    (["--duration", "0"], "--duration: expected a number above 0, got '0'"),
    (["--block", "-1"], "--block: expected a number of at least 0, got '-1'"),
    (["--algorithm", "leaky"], "--algorithm: invalid choice: 'leaky'"),
    (["--plans", "free=5"], "--plans: bad plan 'free=5': write name:points"),
    (["--trusted-proxies", "my-proxy"], "--trusted-proxies: bad proxy address 'my-proxy'"),
])
def test_bad_options_stop_the_server_with_a_usage_error(args, message):
    done = cli("serve", "ratelimit", "--port", "1", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_proxy_needs_http_upstreams():
    done = cli("serve", "proxy", "--upstream", "ftp://example")
    assert done.returncode == 2 and "--upstream takes comma-separated http:// URLs" in done.stderr


def test_a_configured_redis_that_is_down_stops_the_server_with_one_line():
    port = processes.free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    env.pop("BACKENDLAB_SHARED_REDIS_URL", None)
    env.pop("BACKENDLAB_EMBEDDED", None)
    done = cli("serve", "ratelimit", "--store", "redis", "--port", str(processes.free_port()),
               env=env)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: Redis: REDIS_URL=redis://127.0.0.1:{port}/0 does not answer")
    assert "Fix: start it (`docker compose up -d redis`" in line


def test_each_policy_holds_when_redis_is_down_from_the_start():
    down = f"redis://127.0.0.1:{processes.free_port()}/0"
    with contextlib.ExitStack() as stack:
        servers = start_all(stack, {policy: dict(store="redis", redis_url=down, key="user",
                                                 points=2, duration=60, on_redis_error=policy)
                                    for policy in ("open", "closed", "insurance")})
        statuses = {policy: [as_user(server, "u").status_code for _ in range(4)]
                    for policy, server in servers.items()}
        closed = as_user(servers["closed"], "u")
    assert statuses == {"open": [200] * 4, "closed": [503] * 4, "insurance": [200, 200, 429, 429]}
    assert closed.headers["retry-after"] == "1"
    assert closed.json()["error"].startswith("rate-limit store unavailable (ConnectionError)")


def test_workers_share_one_redis_and_admit_exactly_the_limit(suite_redis_both_ways):
    with start_server("ratelimit", store="redis", workers=2, points=10, duration=60,
                      prefix=f"bltest-workers-{time.time_ns()}") as server:
        assert len(worker_pids(server.url + "/health", 2)) == 2
        with httpx.Client(limits=FRESH) as client:
            statuses = [client.get(server.url + "/api/data").status_code for _ in range(30)]
        assert statuses.count(200) == 10 and statuses.count(429) == 20


def test_from_a_shell_the_workers_start_one_embedded_redis_and_stop_it(monkeypatch):
    for var in ("REDIS_URL", "BACKENDLAB_SHARED_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BACKENDLAB_EMBEDDED", "1")
    with start_server("ratelimit", store="redis", workers=2, points=5, duration=60) as server:
        family = psutil.Process(server.pid).children(recursive=True)
        redis_servers = [p for p in family if "redis" in " ".join(p.cmdline()[:3])]
        assert len(redis_servers) == 1, [p.cmdline() for p in family]
        with httpx.Client(limits=FRESH) as client:
            statuses = [client.get(server.url + "/api/data").status_code for _ in range(12)]
        assert statuses.count(200) == 5
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
