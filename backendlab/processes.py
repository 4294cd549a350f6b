"""Child processes that never outlive the kernel that started them.

Every service and experiment server runs as a real process. Each one starts in its own process
group, is asked to die with its parent (Linux PR_SET_PDEATHSIG), is registered for an atexit stop,
and is stopped with TERM then KILL after a grace period (some programs ignore TERM for seconds).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_running: list["ManagedProcess"] = []
_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to KILL it when the parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class ProcessFailed(RuntimeError):
    """A child process exited or never became ready; the message carries its last output."""


@dataclass
class ManagedProcess:
    """A child process in its own group, with its output kept in a temp file for diagnosis."""

    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None
    stopped: bool = field(default=False, init=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The last `limit` characters the process wrote to stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def wait_for_port(self, timeout: float = 20.0) -> "ManagedProcess":
        """Block until the process accepts TCP connections on its port, or raise with its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                out = self.output()
                self.stop()
                raise ProcessFailed(f"{self.name} exited with code {self.popen.returncode}:\n{out}")
            if self.port is not None and port_open("127.0.0.1", self.port, timeout=0.2):
                return self
            time.sleep(0.05)
        out = self.output()
        self.stop()
        raise ProcessFailed(f"{self.name} did not listen on port {self.port} within {timeout}s:\n{out}")

    def stop(self, grace: float = 3.0) -> None:
        """TERM the whole process group, then KILL it if it has not gone after `grace` seconds."""
        if self.stopped:
            return
        self.stopped = True
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self._reap_group()
        with _lock:
            if self in _running:
                _running.remove(self)
        self.log_path.unlink(missing_ok=True)

    def _reap_group(self) -> None:
        """KILL any straggler left in the group (worker processes that ignore TERM)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> "ManagedProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(name: str, argv: list[str], *, port: int | None = None, env: dict | None = None,
          cwd: str | os.PathLike | None = None) -> ManagedProcess:
    """Start `argv` as a managed child; its output goes to a temp log removed when it stops."""
    fd, log_name = tempfile.mkstemp(prefix=f"backendlab-{name}-", suffix=".log")
    full_env = {**os.environ, **(env or {})}
    with os.fdopen(fd, "wb") as log:
        popen = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env,
            cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent,
        )
    proc = ManagedProcess(name=name, argv=argv, popen=popen, log_path=Path(log_name), port=port)
    with _lock:
        _running.append(proc)
    return proc


def python_module(name: str, module: str, *args: str, port: int | None = None,
                  env: dict | None = None) -> ManagedProcess:
    """Start `python -m module args...` with this interpreter."""
    return start(name, [sys.executable, "-m", module, *args], port=port, env=env)


def running() -> list[ManagedProcess]:
    """The managed processes started by this interpreter that have not been stopped."""
    with _lock:
        return list(_running)


def stop_all() -> None:
    """Stop every managed process, newest first (servers before the services they use)."""
    for proc in reversed(running()):
        proc.stop()


atexit.register(stop_all)
