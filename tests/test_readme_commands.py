"""Every command the README (and the contributor guide) gives is one these tests know, and each
works as written.

A command is a line of a ```bash block, or an inline code span that starts like one (`make`,
`.venv/bin/...`, `backendlab`, `source`, `export`, `curl`, `apt`). Each must appear in VERIFIED,
with how it is proved: run here for real (ports the README names are swapped for free ones and the
learner's folders for temp ones, nothing else; STANDS_IN names the two that would change the
machine and what runs instead), a usage form checked against the command line's
own usage text, or run by another test named here. A command added to the README without a proof
fails `test_every_readme_command_is_verified`; a proof for a command the README no longer gives
fails too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from backendlab import processes
from conftest import REAL_DATABASE_URL, REAL_REDIS_URL, SERVICE_VARS, need_real

pytestmark = pytest.mark.long_file

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "CONTRIBUTING.md")
README = DOCS[0]
COMMAND_START = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:make |\.venv/bin/|backendlab |source |export |"
                           r"curl |apt )")
BROKER_LINE = re.compile(r"started an embedded one at (127\.0\.0\.1:\d+)")


def readme_commands() -> list[str]:
    """The commands of the README and the contributor guide, whitespace collapsed, comments
    dropped, in order, each once."""
    text = "\n".join(doc.read_text() for doc in DOCS)
    found: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                found.append(command)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`]+)`", prose):
        command = " ".join(span.split())
        if COMMAND_START.match(command):
            found.append(command)
    return list(dict.fromkeys(found))


def run(command: str, env: dict | None = None, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `command` in bash at the repository's root, as a learner pasting it would."""
    return subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True,
                          env=env, input=stdin if stdin is not None else "", timeout=timeout)


# What a make running this suite (`make test`, `make test-busy`) passes to its children: a README
# command typed in a shell has none, and with them a nested make prints "Entering directory" and
# takes the outer run's variables (TEST_WORKERS, TOPIC).
MAKE_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


@pytest.fixture
def blank_env(tmp_path) -> dict:
    """A learner's shell on a machine with no service configured, quiz progress in `tmp_path`."""
    env = {k: v for k, v in os.environ.items()
           if k not in SERVICE_VARS and not k.startswith("BACKENDLAB_SHARED_")
           and k not in ("BACKENDLAB_EMBEDDED", "BACKENDLAB_REDIS_ENGINE")
           and k not in MAKE_VARS}
    env["BACKENDLAB_CONFIG"] = str(tmp_path / "no-backendlab.env")
    env["BACKENDLAB_PROGRESS"] = str(tmp_path / "progress.json")
    return env


def with_free_port(command: str) -> tuple[str, int]:
    port = processes.free_port()
    return command.replace("--port 8000", f"--port {port}"), port


def usage_of(argv: list[str]) -> str:
    done = subprocess.run([sys.executable, "-m", "backendlab", *argv], capture_output=True,
                          text=True, timeout=60)
    return done.stdout + done.stderr


# --- how each command is proved ---------------------------------------------------------------

def make_dry_run(target: str, *expected: str):
    """A make target whose recipe needs what this machine lacks (Docker): its recipe is checked."""
    def check(command, env, tmp_path):
        done = run(f"make -n {target}", env=env)
        assert done.returncode == 0, done.stderr
        for line in expected:
            assert line in done.stdout, done.stdout
    return check


def elsewhere(test_file: str, *evidence: str):
    """Run for real by another test (too slow or too stateful to run twice): the test is there
    and holds the command's words."""
    def check(command, env, tmp_path):
        [path] = (ROOT / "tests").rglob(test_file)
        source = path.read_text()
        for words in evidence:
            assert words in source, f"{test_file} no longer runs {command!r}"
    return check


def all_of(*checks):
    def check(command, env, tmp_path):
        for each in checks:
            each(command, env, tmp_path)
    return check


def usage_form(argv: list[str], form: str):
    """A form with placeholders (NAME, N): the command line's own usage text says the same."""
    def check(command, env, tmp_path):
        assert form in usage_of(argv)
    return check


def check_runs(expected: str | None = None, code: int = 0, stdin: str | None = None):
    def check(command, env, tmp_path):
        done = run(command, env=env, stdin=stdin)
        assert done.returncode == code, done.stdout + done.stderr
        if expected is not None:
            assert expected in done.stdout + done.stderr, done.stdout + done.stderr
    return check


def check_make_test_is_ci(command, env, tmp_path):
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")


def check_skip_browser(command, env, tmp_path):
    from test_browser import require_chromium

    done = run("BACKENDLAB_SKIP_BROWSER=1 make -s browser", env=env)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    os.environ["BACKENDLAB_SKIP_BROWSER"] = "1"
    try:
        with pytest.raises(pytest.skip.Exception):
            require_chromium()
    finally:
        del os.environ["BACKENDLAB_SKIP_BROWSER"]


def check_refresh(command, env, tmp_path):
    workspace = tmp_path / "work"
    done = run(f"{command} WORKSPACE={workspace}", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in ("notebooks", "labs"):
        assert f"{workspace}/{kind}/01-event-loop-and-streaming.ipynb: fresh copy" in done.stdout
    assert sorted(p.name for p in workspace.rglob("*.ipynb")) == [
        "01-event-loop-and-streaming.ipynb"] * 2


def check_progress_reset(command, env, tmp_path):
    file = Path(env["BACKENDLAB_PROGRESS"])
    file.write_text('{"version": 1, "banks": {}}')
    kept = run(command, env=env, stdin="n\n")
    assert kept.returncode == 0 and "[y/N]" in kept.stdout and file.exists(), kept.stdout
    deleted = run(command, env=env, stdin="y\n")
    assert deleted.returncode == 0 and not file.exists(), deleted.stdout + deleted.stderr


def check_moved_progress(command, env, tmp_path):
    env = {**env, "HOME": str(tmp_path)}
    done = run(f"{command} && .venv/bin/backendlab progress --path", env=env)
    assert done.stdout.strip() == f"{tmp_path}/sync/backendlab-progress.json", done.stderr


def check_activated_venv(command, env, tmp_path):
    done = run(f"{command} && backendlab progress --path", env=env)
    assert done.returncode == 0 and done.stdout.strip() == env["BACKENDLAB_PROGRESS"], done.stderr


def check_real_services_block(command, env, tmp_path):
    """The block: export REDIS_URL and DATABASE_URL for services already running, then doctor."""
    from backendlab.services import redis, sql

    block = re.search(r"```bash\n(export REDIS_URL=.*?)```", README.read_text(), re.S).group(1)
    redis_url = re.search(r"REDIS_URL=(\S+)", block).group(1)
    database_url = re.search(r"DATABASE_URL=(\S+)", block).group(1)
    if (redis_url, database_url) != (REAL_REDIS_URL, REAL_DATABASE_URL):
        pytest.skip("this machine's real services are not the README's example")
    need_real(redis.service, redis_url)
    need_real(sql.service, database_url)
    done = run(block, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
            if line.split()[:1] in (["Redis"], ["Kafka"], ["S3"], ["SQL"])}
    assert rows == {"Redis": "real", "Kafka": "embedded", "S3": "embedded", "SQL": "real"}, rows


def check_serve_ratelimit(command, env, tmp_path):
    command, port = with_free_port(command)
    url = f"http://127.0.0.1:{port}"
    with processes.start("readme-ratelimit", ["bash", "-c", f"exec {command}"], port=port,
                         env=env, inherit_env=False, cwd=ROOT) as proc:
        proc.wait_for_port(60)
        index = httpx.get(url + "/").json()
        assert index["limited"] == "GET /api/data" and index["rule"]["store"] == "redis"
        answers = [httpx.get(url + "/api/data").status_code for _ in range(11)]
        assert answers == [200] * 10 + [429], answers
        assert f"ratelimit: serving {url} with routes" in proc.output(limit=None)


def check_curl_index(command, env, tmp_path):
    """`curl http://127.0.0.1:8000/` against the rate limiter the README starts on port 8000."""
    server, port = with_free_port(
        ".venv/bin/backendlab serve ratelimit --port 8000 --points 2 --duration 60")
    with processes.start("readme-curl", ["bash", "-c", f"exec {server}"], port=port, env=env,
                         inherit_env=False, cwd=ROOT) as proc:
        proc.wait_for_port(60)
        done = run(command.replace(":8000/", f":{port}/"), env=env)
    assert done.returncode == 0 and '"limited":"GET /api/data"' in done.stdout, done.stderr


def check_notifications_then_replay(command, env, tmp_path):
    """Serve notifications with nothing configured, then replay its (empty) dead letters with the
    README's kafka-replay command, pointed at the broker the server printed."""
    command, port = with_free_port(command)
    replay = next(c for c in readme_commands() if "kafka-replay --bootstrap" in c)
    with processes.start("readme-notifications", ["bash", "-c", f"exec {command}"], port=port,
                         env=env, inherit_env=False, cwd=ROOT) as proc:
        proc.wait_for_port(60)
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/health").status_code != 200:
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.2)
        printed = BROKER_LINE.search(proc.output(limit=None))
        assert printed, f"the server did not say which broker it started:\n{proc.output()}"
        broker = printed.group(1)
        done = run(replay.replace("127.0.0.1:9092", broker), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 records" in done.stdout or "moved 0" in done.stdout, done.stdout


def check_one_topic(command, env, tmp_path):
    """`make test TOPIC=06` passes the topic to pytest, which then collects that topic's own
    tests, its notebook and its lab proofs (which run its solution), and nothing of another
    topic."""
    dry = run(f"make -n {command.removeprefix('make ')}", env=env)
    assert "pytest tests notebooks --nbval -p no:cacheprovider -n 3 --topic 06" in dry.stdout, \
        dry.stdout
    listed = run(".venv/bin/python -m pytest tests notebooks --nbval -p no:cacheprovider "
                 "--topic 06 --collect-only -q", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    nodes = [line for line in listed.stdout.splitlines() if "::" in line]
    for start in ("tests/ratelimit/", "notebooks/06-rate-limiting.ipynb::",
                  "tests/test_lab_proofs.py::test_every_check_passes_on_the_solution_notebook"
                  "[06-rate-limiting]"):
        assert any(node.startswith(start) for node in nodes), start
    strays = [n for n in nodes if not n.startswith(("tests/ratelimit/", "notebooks/06-"))
              and "[06-rate-limiting]" not in n and "[ratelimit]" not in n]
    assert strays == [], strays


def check_test_busy(command, env, tmp_path):
    """`make test-busy` runs `make test` three times through scripts/test-busy, which keeps one
    core busy meanwhile and stops the busy process however the runs end (three full runs are
    too long for a test: the script is run on quick commands instead)."""
    dry = run(f"make -n {command.removeprefix('make ')}", env=env)
    assert "scripts/test-busy make test" in dry.stdout, dry.stdout
    for runs, code in (("true", 0), ("false", 1)):
        before = {p.pid for p in psutil.process_iter()}
        done = run(f"scripts/test-busy {runs}", env=env)
        assert done.returncode == code, done.stdout + done.stderr
        assert done.stdout.count("with one core kept busy") == (3 if code == 0 else 1), done.stdout
        busy = [p for p in psutil.process_iter(["cmdline"]) if p.pid not in before
                and "while True: pass" in " ".join(p.info["cmdline"] or [])]
        assert busy == [], "the busy process outlived the runs"


def check_nbconvert_form(command, env, tmp_path):
    notebook = command.split()[-1]
    assert (ROOT / notebook).is_file()
    assert run(".venv/bin/jupyter nbconvert --version", env=env).returncode == 0


VERIFIED = {
    "make lab": elsewhere("test_first_run.py", '"make", "lab"'),
    "make test": check_make_test_is_ci,
    "make lab LAB_PORT=8890": elsewhere("test_first_run.py", 'f"LAB_PORT={port}"'),
    ".venv/bin/jupyter server list": elsewhere("test_first_run.py",
                                               '.venv/bin/jupyter"), "server", "list"'),
    "BACKENDLAB_SKIP_BROWSER=1 make test": check_skip_browser,
    "apt install python3-venv": check_runs("usage: venv"),
    "make refresh NB=01": check_refresh,
    "make progress": check_runs("(nothing recorded yet)"),
    ".venv/bin/backendlab progress --path": check_runs(),
    ".venv/bin/backendlab progress --reset": check_progress_reset,
    "export BACKENDLAB_PROGRESS=$HOME/sync/backendlab-progress.json": check_moved_progress,
    ".venv/bin/uv cache clean": check_runs("Clear the cache"),
    "export REDIS_URL=redis://127.0.0.1:6379/0": check_real_services_block,
    "export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test": check_real_services_block,
    "make doctor": check_runs("Redis    embedded"),
    "make services": make_dry_run("services", "docker compose up -d --wait",
                                  "cp services.env backendlab.env"),
    "make services-down": make_dry_run("services-down", "docker compose down",
                                       "rm -f backendlab.env"),
    ".venv/bin/backendlab COMMAND": usage_form([], "usage: backendlab COMMAND [options]"),
    "source .venv/bin/activate": check_activated_venv,
    "backendlab COMMAND": usage_form([], "usage: backendlab COMMAND [options]"),
    ".venv/bin/backendlab": check_runs("commands:\n  lab ", code=2),
    ".venv/bin/backendlab serve NAME --port N [options]": usage_form(
        ["serve"], "usage: backendlab serve NAME --port N [options]"),
    ".venv/bin/backendlab serve eventloop --help": check_runs("--workers"),
    ".venv/bin/backendlab serve ratelimit --port 8000 --workers 3 --store redis --algorithm "
    "sliding_log --points 10 --duration 60 --block 60 --key ip": check_serve_ratelimit,
    "curl http://127.0.0.1:8000/": check_curl_index,
    ".venv/bin/backendlab serve notifications --port 8000 --topic form-events --smtp "
    "127.0.0.1:2525": check_notifications_then_replay,
    ".venv/bin/backendlab kafka-replay --bootstrap 127.0.0.1:9092 --dlt form-events.dlt "
    "--rate 10": elsewhere("test_readme_commands.py", '"kafka-replay --bootstrap" in c'),
    "make bench": all_of(make_dry_run("bench", "-m backendlab bench ratelimit"),
                         elsewhere("test_ratelimit_bench.py", 'bench("ratelimit"')),
    ".venv/bin/backendlab bench ratelimit --help": check_runs("--rounds"),
    "make labs": make_dry_run("labs", "-m backendlab labs"),
    "make test TOPIC=06": check_one_topic,
    "make test-busy": check_test_busy,
    ".venv/bin/backendlab labs --check": check_runs(),
    "BACKENDLAB_EMBEDDED=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace "
    "notebooks/01-event-loop-and-streaming.ipynb": check_nbconvert_form,
    "BACKENDLAB_EMBEDDED=1 .venv/bin/jupyter nbconvert --to notebook --execute --inplace "
    "notebooks/06-rate-limiting.ipynb": check_nbconvert_form,
}
# Commands that change the machine beyond the test's reach: what runs instead shows they work.
STANDS_IN = {"apt install python3-venv": "python3 -m venv --help",
             ".venv/bin/uv cache clean": ".venv/bin/uv cache clean --help"}


def test_every_readme_command_is_verified():
    commands = readme_commands()
    assert len(commands) > 20, "the README's commands were not found"
    unknown = [c for c in commands if c not in VERIFIED]
    assert unknown == [], f"README commands no test proves (add them to VERIFIED): {unknown}"
    stale = [c for c in VERIFIED if c not in commands]
    assert stale == [], f"VERIFIED names commands the README no longer gives: {stale}"


@pytest.mark.parametrize("command", list(VERIFIED))
def test_readme_command_works(command, blank_env, tmp_path):
    VERIFIED[command](STANDS_IN.get(command, command), blank_env, tmp_path)
