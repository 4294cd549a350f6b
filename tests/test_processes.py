"""Managed processes stop as a group, even when they ignore TERM, and die with their parent."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from backendlab import processes

IGNORES_TERM = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(child.pid, flush=True)
    time.sleep(60)
""")


def wait_gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_stop_kills_a_group_that_ignores_term():
    proc = processes.start("stubborn", [sys.executable, "-c", IGNORES_TERM])
    deadline = time.monotonic() + 10
    while not proc.output().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(proc.output().split()[0])
    started = time.monotonic()
    proc.stop(grace=0.5)
    assert time.monotonic() - started < 5
    assert wait_gone(proc.pid) and wait_gone(child)
    assert proc not in processes.running()
    assert proc.log.closed


def test_a_child_started_from_a_short_lived_thread_outlives_the_thread():
    started = []
    worker = threading.Thread(target=lambda: started.append(processes.start("sleeper", ["sleep", "30"])))
    worker.start()
    worker.join()
    time.sleep(0.3)
    try:
        assert started[0].alive(), "the child died with the thread that asked for it"
    finally:
        started[0].stop()


def test_children_die_when_their_parent_is_killed():
    parent_code = textwrap.dedent("""
        import time
        from backendlab import processes
        p = processes.start("sleeper", ["sleep", "60"])
        print(p.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert psutil.pid_exists(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_gone(child), "a managed child outlived its killed parent"


def test_wait_for_port_reports_the_output_of_a_crash():
    proc = processes.start("crasher", [sys.executable, "-c", "print('boom: bad option'); raise SystemExit(3)"],
                           port=processes.free_port())
    with pytest.raises(processes.ProcessFailed, match="boom: bad option"):
        proc.wait_for_port(timeout=10)


def test_free_port_is_free_and_loopback():
    port = processes.free_port()
    assert not processes.port_open("127.0.0.1", port)


KEEPS_A_FOLDER = textwrap.dedent("""
    import tempfile, time
    from backendlab import processes
    folder = tempfile.mkdtemp(prefix="backendlab-keeper-test-")
    processes.remove_when_gone(folder)
    print(folder, flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_kept_folder_is_removed_when_its_owner_goes_however_it_goes(how, tmp_path):
    if how == "stopped":
        folder = tmp_path / "kept"
        folder.mkdir()
        processes.remove_when_gone(folder).stop()
    else:
        owner = subprocess.Popen([sys.executable, "-c", KEEPS_A_FOLDER], stdout=subprocess.PIPE, text=True)
        folder = Path(owner.stdout.readline().strip())
        assert folder.is_dir()
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 5
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists()
