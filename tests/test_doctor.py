"""`backendlab doctor` tells the truth with real services on and with them forced off."""

import os
import subprocess
import sys
import uuid

import psutil

from backendlab import processes
from backendlab.services.redis import RedisService
from backendlab.services.sql import SQLService
from conftest import REAL_DATABASE_URL, REAL_REDIS_URL, need_real


def run_doctor(env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT_URL", "DATABASE_URL",
                         "BACKENDLAB_EMBEDDED") and not k.startswith("BACKENDLAB_SHARED_")}
    base["BACKENDLAB_CONFIG"] = "/nonexistent/backendlab.env"
    return subprocess.run([sys.executable, "-m", "backendlab", "doctor"], capture_output=True,
                          text=True, timeout=60, env={**base, **env})


def rows(output: str) -> dict[str, list[str]]:
    lines = output.strip().splitlines()
    return {line.split()[0]: line.split() for line in lines[1:] if line and line.split()[0] in
            ("Redis", "Kafka", "S3", "SQL")}


def test_forced_embedded_everything_answers():
    done = run_doctor({"BACKENDLAB_EMBEDDED": "1", "REDIS_URL": REAL_REDIS_URL})
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert set(table) == {"Redis", "Kafka", "S3", "SQL"}
    for name, cells in table.items():
        assert cells[1] == "embedded", cells
        assert "yes" in cells, cells


def test_real_services_are_reported_as_real():
    need_real(RedisService(), REAL_REDIS_URL)
    need_real(SQLService(), REAL_DATABASE_URL)
    done = run_doctor({"REDIS_URL": REAL_REDIS_URL, "DATABASE_URL": REAL_DATABASE_URL})
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table["Redis"][1:3] == ["real", REAL_REDIS_URL]
    assert table["SQL"][1:3] == ["real", REAL_DATABASE_URL]
    assert table["Kafka"][1] == "embedded"


def test_unreachable_configured_service_fails_with_the_fix():
    port = processes.free_port()
    done = run_doctor({"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert done.returncode == 1
    redis_row = rows(done.stdout)["Redis"]
    assert "NO" in redis_row
    assert "docker compose up -d redis" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_doctor_leaves_nothing_running():
    """Every process the doctor starts inherits a mark in its environment; none may outlive it
    (the mark, not a before/after list, so a test running alongside does not count)."""
    mark = uuid.uuid4().hex
    done = run_doctor({"BACKENDLAB_EMBEDDED": "1", "BACKENDLAB_TEST_MARK": mark})
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p for p in psutil.process_iter() if marked(p, mark)] == []


def marked(process: psutil.Process, mark: str) -> bool:
    try:
        return process.environ().get("BACKENDLAB_TEST_MARK") == mark
    except psutil.Error:
        return False
