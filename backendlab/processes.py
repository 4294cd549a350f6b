"""Child processes that never outlive the kernel that started them.

Every service and experiment server runs as a real process. Each one starts in its own process
group, is asked to die with its parent (Linux PR_SET_PDEATHSIG), is registered for an atexit stop,
and is stopped with TERM then KILL after a grace period (some programs ignore TERM for seconds).
PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, so every child is forked
from one long-lived spawner thread: a first call from a short-lived worker thread is safe.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import IO

_PR_SET_PDEATHSIG = 1
_running: list["ManagedProcess"] = []
_lock = threading.Lock()
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:
    _libc = None


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


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send `sig` (KILL by default) to this process when its parent dies (also for
    pool and uvicorn workers)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() == 1:
            os._exit(1)


class _Spawner:
    """One daemon thread that forks every child, so the death signal is tied to the process's life."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True, name="backendlab-spawner")
                self._thread.start()
        done: Future = Future()
        self._jobs.put((done, args, kwargs))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, args, kwargs = self._jobs.get()
            try:
                done.set_result(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:
                done.set_exception(exc)


_spawner = _Spawner()


class ProcessFailed(RuntimeError):
    """A child process exited or never became ready; the message carries its last output."""


@dataclass
class ManagedProcess:
    """A child process in its own group; its output goes to an unlinked temp file kept for diagnosis."""

    name: str
    argv: list[str]
    popen: subprocess.Popen
    log: IO[bytes]
    port: int | None = None
    stopped: bool = field(default=False, init=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int | None = 4000) -> str:
        """The last `limit` characters the process wrote to stdout/stderr (None: the first MiB,
        for searching what it printed at start behind later logs)."""
        try:
            text = os.pread(self.log.fileno(), 1 << 20, 0).decode(errors="replace")
            return text if limit is None else text[-limit:]
        except (OSError, ValueError):
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
        self.log.close()

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
          cwd: str | os.PathLike | None = None, death_signal: int = signal.SIGKILL,
          inherit_env: bool = True) -> ManagedProcess:
    """Start `argv` as a managed child; its output goes to a temp file that no path names, so
    nothing is left on disk even when this process is killed. `env` is added to this process's
    environment, or is the whole of it with `inherit_env=False` (to leave variables out)."""
    log = tempfile.TemporaryFile(prefix=f"backendlab-{name}-")
    try:
        popen = _spawner.popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**(os.environ if inherit_env else {}), **(env or {})}, cwd=cwd,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(death_signal),
        )
    except BaseException:
        log.close()
        raise
    proc = ManagedProcess(name=name, argv=argv, popen=popen, log=log, port=port)
    with _lock:
        _running.append(proc)
    return proc


_KEEPER = """
import shutil, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


def remove_when_gone(path: str | os.PathLike) -> ManagedProcess:
    """A tiny keeper process that deletes the folder `path` when it is stopped or when this process
    dies, even by SIGKILL (atexit does not run then: a notebook runner kills its kernels)."""
    keeper = start("folder-keeper", [sys.executable, "-c", _KEEPER, os.fspath(path)],
                   death_signal=signal.SIGTERM)
    deadline = time.monotonic() + 10
    while "ready" not in keeper.output() and keeper.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return keeper


def running() -> list[ManagedProcess]:
    """The managed processes started by this interpreter that have not been stopped."""
    with _lock:
        return list(_running)


def stop_all() -> None:
    """Stop every managed process, newest first (servers before the services they use)."""
    for proc in reversed(running()):
        proc.stop()


atexit.register(stop_all)
