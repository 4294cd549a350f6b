"""A learner's first run, as the README says it: `make lab`, open the link it prints, run notebook 00.

`make lab` runs with an empty HOME, a free port (`LAB_PORT`, as the README offers) and a temp
workspace; the link it prints must open notebook 00 logged in, without the news pop-up, and
`.venv/bin/jupyter server list` must find the server again. A run of the workspace copy of notebook
00 must leave `git status` as it was. Needs Chromium, like the quiz's browser test.
"""

from __future__ import annotations

import json
import os
import re
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from playwright.sync_api import expect

from backendlab import processes
from browser.lab import chromium, jupyter_env
from test_browser import require_chromium

pytestmark = pytest.mark.long_file

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"http://127\.0\.0\.1:\d+/\S+")
NEWS = "Would you like to get notified about official Jupyter news?"


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def printed_link(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """The first link `make lab` prints, and everything it printed up to it. Lines are read by a
    thread: select() on a buffered pipe misses lines already read into Python's buffer."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    seen, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen += line
        match = LINK.search(line)
        if match:
            return match.group(0), seen
    raise AssertionError(f"make lab printed no link within {timeout:.0f} s:\n{seen}")


def stop_make(process: subprocess.Popen) -> None:
    """TERM to the whole `make lab` group (make, the launcher, JupyterLab), KILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def running_with(text: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if text in cmdline and proc.pid != os.getpid():
            found.append(cmdline)
    return found


def test_the_link_make_lab_prints_opens_notebook_00_logged_in(tmp_path):
    require_chromium()
    home, workspace = tmp_path / "home", tmp_path / "my-work"
    home.mkdir()
    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKENDLAB_SHARED_")}
    env.update(HOME=str(home), BACKENDLAB_PROGRESS=str(tmp_path / "progress.json"))
    before = git_status()
    make = subprocess.Popen(["make", "lab", f"LAB_PORT={port}", f"WORKSPACE={workspace}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        link, printed = printed_link(make, timeout=120)
        assert link.startswith(f"http://127.0.0.1:{port}/lab/tree/notebooks/00-start-here.ipynb?token=")
        assert printed.count("token=") == 1, f"one link, one token:\n{printed}"

        listed = subprocess.run([str(ROOT / ".venv/bin/jupyter"), "server", "list", "--json"],
                                env=env, capture_output=True, text=True, timeout=60)
        servers = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        assert [s["port"] for s in servers] == [port], listed.stdout + listed.stderr
        assert link.endswith(f"token={servers[0]['token']}"), "the printed token is the server's"

        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(link)
            tab = page.get_by_role("tab", name="00-start-here.ipynb")
            expect(tab).to_have_attribute("aria-selected", "true", timeout=60_000)
            heading = page.get_by_role("heading", name="00 · Start here")
            expect(heading).to_be_visible(timeout=60_000)
            assert page.locator("input[type=password]").count() == 0, "the login page showed"
            page.wait_for_timeout(2000)  # the news pop-up, when enabled, shows a moment after load
            assert page.get_by_text(NEWS).count() == 0, "JupyterLab's news pop-up covers the notebook"
            page.screenshot(path=tmp_path / "first-run.png")
    finally:
        stop_make(make)
    assert running_with(str(workspace)) == [], "JupyterLab or a kernel outlived make lab"

    copy = workspace / "notebooks" / "00-start-here.ipynb"
    nb = nbformat.read(copy, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells), "a learner starts without stored results"
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(copy.parent)}}).execute(
                       env={**env, **jupyter_env(tmp_path)})
    assert git_status() == before, "running notebook 00 in the workspace changed the repository"
