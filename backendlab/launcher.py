"""`make lab`: JupyterLab on 127.0.0.1 over the learner's workspace, opening on notebook 00.

The link is printed once JupyterLab answers, with the one token it was started with, and points at
notebook 00 itself: JupyterLab's default URL applies to `/` only, so a `/lab?token=` link would open
the Launcher. Jupyter's own start-up lines (a URL with the token hidden as `...`) are kept quiet.
Jupyter's runtime folder stays where Jupyter looks for it, so `.venv/bin/jupyter server list`
finds the running server again; its config lives in the project's `.cache/` (the news pop-up off).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backendlab import catalog, processes
from backendlab.workspace import DEFAULT_NAME, Workspace, WorkspaceError

START = "notebooks/00-start-here.ipynb"
# The announcements plugin asks for news and update checks in a pop-up over the notebook.
DISABLED = {"@jupyterlab/apputils-extension:announcements": True}


def repo_root() -> Path:
    root = catalog.project_root()
    if root is None:
        raise SystemExit("error: run this from the backendlab repository (its notebooks/ folder "
                         "holds what the workspace copies)")
    return root


def start_url(port: int, token: str) -> str:
    return f"http://127.0.0.1:{port}/lab/tree/{START}?token={token}"


def jupyter_env(repo: Path) -> dict[str, str]:
    """The environment for JupyterLab: Jupyter's config, IPython and matplotlib in `.cache/`
    (unless already set, as `make` and the tests do), with the news pop-up turned off, and the
    venv's commands first on PATH, so `backendlab ...` works in a JupyterLab terminal."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cache = repo / ".cache"
    env.setdefault("JUPYTER_CONFIG_DIR", str(cache / "jupyter" / "config"))
    env.setdefault("IPYTHONDIR", str(cache / "ipython"))
    env.setdefault("MPLCONFIGDIR", str(cache / "matplotlib"))
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    page_config = labconfig / "page_config.json"
    settings = json.loads(page_config.read_text()) if page_config.exists() else {}
    settings.setdefault("disabledExtensions", {}).update(DISABLED)
    page_config.write_text(json.dumps(settings, indent=2) + "\n")
    return env


def jupyter_argv(port: int, token: str, folder: Path) -> list[str]:
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={folder}", f"--IdentityProvider.token={token}",
            f"--LabApp.default_url=/lab/tree/{START}", "--ServerApp.log_level=WARN",
            "--LabApp.log_level=WARN"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def wait_until_ready(process: subprocess.Popen, port: int, token: str, timeout: float) -> bool:
    """True once the server answers its status API with this token; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2,
                         headers={"Authorization": f"token {token}"}).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def run_lab(port: int, folder: Path, timeout: float = 120.0) -> int:
    """Create the workspace if needed, start JupyterLab on it and wait until it stops."""
    repo = repo_root()
    if processes.port_open("127.0.0.1", port):
        raise SystemExit(f"error: port {port} on 127.0.0.1 is taken (another JupyterLab?): "
                         f"run `make lab LAB_PORT={port + 2}`")
    made = Workspace(repo, folder).create()
    if made:
        print(f"Copied {len(made)} notebooks and labs into {folder} (outputs cleared).")
    token = secrets.token_urlsafe(18)
    process = subprocess.Popen(jupyter_argv(port, token, folder), env=jupyter_env(repo))
    # Ctrl-C reaches JupyterLab too (same terminal), which asks before it stops; TERM is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    if wait_until_ready(process, port, token, timeout):
        print(f"\nJupyterLab is ready. Open this link (it opens notebook 00):\n\n"
              f"    {start_url(port, token)}\n\n"
              f"Your work is saved in {folder}/. Lost the link? "
              f"`.venv/bin/jupyter server list`. Stop: Ctrl-C twice.\n", flush=True)
    elif process.poll() is None:
        print(f"JupyterLab did not answer on port {port} within {timeout:.0f} s; its messages "
              "above say why.", flush=True)
    code = process.wait()
    return 0 if code in (0, -signal.SIGTERM) else code


def refresh(name: str, folder: Path) -> int:
    """Replace the workspace copies of notebook `name` with the repository's current ones."""
    try:
        done = Workspace(repo_root(), folder).refresh(name)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for target, kept in done:
        print(f"{target}: fresh copy" + (f"; your old one is kept as {kept}" if kept else ""))
    return 0


def main_lab(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="backendlab lab", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--workspace", type=Path, default=None,
                        help=f"the learner's folder (default: {DEFAULT_NAME}/ in the repository)")
    args = parser.parse_args(argv)
    folder = (args.workspace or repo_root() / DEFAULT_NAME).resolve()
    return run_lab(args.port, folder)


def main_refresh(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="backendlab refresh",
        description="Replace your copy of a notebook and its lab with the repository's current "
                    "version (after a git pull); your old copy is kept under .replaced/.")
    parser.add_argument("name", help="a topic number (01), or labs/01 or notebooks/01 for one")
    parser.add_argument("--workspace", type=Path, default=None,
                        help=f"the learner's folder (default: {DEFAULT_NAME}/ in the repository)")
    args = parser.parse_args(argv)
    return refresh(args.name, (args.workspace or repo_root() / DEFAULT_NAME).resolve())
