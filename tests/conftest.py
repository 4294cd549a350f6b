"""Shared test set-up: keep Jupyter, IPython, matplotlib and quiz progress out of $HOME, and give
tests a way to reach the real services of this machine (skipped when absent, unless required)."""

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from backendlab import config

collect_ignore = ["browser/quiz.ipynb"]

_scratch = Path(tempfile.mkdtemp(prefix="backendlab-tests-"))
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
for var, sub in (("MPLCONFIGDIR", "matplotlib"), ("IPYTHONDIR", "ipython"),
                 ("JUPYTER_CONFIG_DIR", "jupyter-config"), ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
                 ("BACKENDLAB_PROGRESS", "progress.json")):
    os.environ.setdefault(var, str(_scratch / sub))

# The real services to compare against: BACKENDLAB_TEST_* if set, else what the suite is
# configured with (backendlab.env after `make services`), else this machine kind's local ones.
REAL_REDIS_URL = (os.environ.get("BACKENDLAB_TEST_REDIS_URL") or config.get("REDIS_URL")
                  or "redis://127.0.0.1:6379/0")
REAL_DATABASE_URL = (os.environ.get("BACKENDLAB_TEST_DATABASE_URL") or config.get("DATABASE_URL")
                     or "postgresql://postgres@127.0.0.1:5432/test")
SERVICE_VARS = ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT_URL", "DATABASE_URL")


def need_real(service, address: str) -> None:
    """Skip (or fail, when BACKENDLAB_REQUIRE_REAL=1 as in CI) if a real service does not answer."""
    try:
        service.probe(address)
    except Exception as exc:
        message = f"real {service.name} at {address} does not answer ({exc})"
        if os.environ.get("BACKENDLAB_REQUIRE_REAL") == "1":
            pytest.fail(message + "; BACKENDLAB_REQUIRE_REAL=1 requires it")
        pytest.skip(message)


@pytest.fixture
def clean_service_env(monkeypatch):
    """No service configured, no shared embedded address, no backendlab.env: a blank machine."""
    for var in SERVICE_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(f"BACKENDLAB_SHARED_{var}", raising=False)
    for var in ("BACKENDLAB_EMBEDDED", "BACKENDLAB_REDIS_ENGINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BACKENDLAB_CONFIG", str(_scratch / "no-such-backendlab.env"))
    return monkeypatch


@pytest.fixture
def unique() -> str:
    """A short unique name for keys, tables, topics and buckets made by one test."""
    return "bltest" + uuid.uuid4().hex[:10]
