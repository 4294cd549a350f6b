"""JupyterLab started in a temp folder, and Debian's Chromium driven by Playwright.

Everything stays on 127.0.0.1 and in the temp folder: Jupyter's config, data and runtime folders,
IPython's, matplotlib's and the quiz progress file. Stopping asks the server to shut its kernels
down, then stops its process group; `leftovers` is whatever still runs afterwards (it must be none).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
import psutil
from playwright.sync_api import Browser, Page, sync_playwright

from backendlab import processes

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
    "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

_RUN_ALL = """async () => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!kernel) { throw new Error('the notebook has no kernel'); }
    await kernel.info;
    await app.commands.execute('notebook:run-all-cells');
}"""


@dataclass
class Lab:
    """A running JupyterLab: its address, token and folder, and what outlived it once stopped."""

    root: Path
    port: int
    token: str
    process: processes.ManagedProcess
    leftovers: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def open_and_run(self, page: Page, notebook: str, timeout: float = 60.0) -> None:
        """Open a notebook in JupyterLab, wait for its kernel, and run all its cells."""
        page.goto(self.url(f"lab/tree/{notebook}"))
        page.wait_for_function(
            "name => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " return !!(w && w.sessionContext && w.context && w.context.path === name); }",
            arg=notebook, timeout=timeout * 1000)
        page.evaluate(_RUN_ALL)

    def stop(self) -> None:
        """Shut the server and its kernels down, then record and kill anything left running."""
        try:
            httpx.post(f"http://127.0.0.1:{self.port}/api/shutdown",
                       headers={"Authorization": f"token {self.token}"}, timeout=10)
            self.process.popen.wait(timeout=20)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            pass  # the TERM-then-KILL below ends it anyway
        self.process.stop()
        self.leftovers = _kill_leftovers(self.root)


def jupyter_env(root: Path) -> dict[str, str]:
    """Environment that keeps Jupyter, IPython, matplotlib and quiz progress inside `root`."""
    return {
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(root / ".jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / ".jupyter" / "runtime"),
        "IPYTHONDIR": str(root / ".ipython"),
        "MPLCONFIGDIR": str(root / ".matplotlib"),
        "BACKENDLAB_PROGRESS": str(root / "progress.json"),
    }


@contextmanager
def jupyter_lab(root: Path, timeout: float = 60.0) -> Iterator[Lab]:
    """JupyterLab serving `root` on a free loopback port with a random token, news toast off."""
    port, token = processes.free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    env = jupyter_env(root)
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {
        "@jupyterlab/apputils-extension:announcements": True}}))
    process = processes.start("jupyterlab", argv, port=port, env=env, cwd=root)
    lab = Lab(root=root, port=port, token=token, process=process)
    try:
        process.wait_for_port(timeout)
        yield lab
    finally:
        lab.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (which cannot download browsers here)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def live_children() -> set[int]:
    """PIDs of this process's live descendants (zombies waiting to be reaped do not count)."""
    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _kill_leftovers(root: Path) -> list[str]:
    """Kill every process whose command line mentions `root` (kernels); describe each one."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmdline and proc.pid != os.getpid():
            found.append(f"{proc.pid}: {cmdline}")
            try:
                proc.kill()
            except psutil.Error:
                pass
    return found
