"""The Redis service behaves the same real and embedded (redis-server or fakeredis)."""

import os
import subprocess
import sys
import time

import pytest
import redis

from backendlab import processes
from backendlab.services.base import ServiceUnavailable
from backendlab.services.redis import RedisService
from conftest import REDIS_ENGINES, use_redis_engine


@pytest.fixture(params=REDIS_ENGINES)
def service(request, clean_service_env):
    svc = RedisService()
    use_redis_engine(clean_service_env, request.param, svc)
    svc.expected_mode = "real" if request.param == "real" else "embedded"
    yield svc
    svc.stop()


@pytest.fixture
def client(service, unique):
    conn = redis.Redis.from_url(service.address(), decode_responses=True)
    yield conn
    for key in conn.scan_iter(f"{unique}:*"):
        conn.delete(key)
    conn.close()


def test_mode_and_loopback_address(service):
    assert service.mode() == service.expected_mode
    assert service.address().startswith("redis://127.0.0.1:")


def test_ttl_expires_in_real_time(client, unique):
    client.set(f"{unique}:k", "v", px=300)
    assert 0 < client.pttl(f"{unique}:k") <= 300
    time.sleep(0.5)
    assert client.get(f"{unique}:k") is None


def test_lua_script_runs_atomically(client, unique):
    incr_with_ttl = client.register_script(
        "local n = redis.call('INCR', KEYS[1]) "
        "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n")
    counts = [incr_with_ttl(keys=[f"{unique}:counter"], args=[5000]) for _ in range(5)]
    assert counts == [1, 2, 3, 4, 5]
    assert client.pttl(f"{unique}:counter") > 0


def test_child_process_sees_the_same_data(service, client, unique):
    client.set(f"{unique}:shared", "from-parent")
    code = ("from backendlab.services import redis_client, redis_url\n"
            f"print(redis_url(), redis_client().get('{unique}:shared'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                         env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [service.address(), "from-parent"]


@pytest.mark.parametrize("engine", ["redis-server", "fakeredis"])
def test_embedded_server_stops_with_the_service(clean_service_env, engine):
    clean_service_env.setenv("BACKENDLAB_EMBEDDED", "1")
    clean_service_env.setenv("BACKENDLAB_REDIS_ENGINE", engine)
    svc = RedisService()
    port = int(svc.address().rsplit(":", 1)[1].split("/")[0])
    assert processes.port_open("127.0.0.1", port)
    svc.stop()
    assert not processes.port_open("127.0.0.1", port)
    assert "BACKENDLAB_SHARED_REDIS_URL" not in os.environ


def test_configured_but_down_gives_one_clear_message(clean_service_env):
    port = processes.free_port()
    clean_service_env.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    with pytest.raises(ServiceUnavailable) as caught:
        RedisService().address()
    message = str(caught.value)
    assert f"REDIS_URL=redis://127.0.0.1:{port}/0 does not answer" in message
    assert "docker compose up -d redis" in message and "unset REDIS_URL" in message
    assert caught.value._render_traceback_() == [f"\033[31mServiceUnavailable\033[0m: {message}"]


def test_forced_embedded_ignores_a_configured_url(clean_service_env):
    clean_service_env.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    clean_service_env.setenv("BACKENDLAB_EMBEDDED", "1")
    svc = RedisService()
    try:
        assert svc.mode() == "embedded"
        assert redis.Redis.from_url(svc.address()).ping()
    finally:
        svc.stop()
