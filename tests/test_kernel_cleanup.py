"""Embedded services and servers started from a notebook kernel stop when the kernel stops,
whether it shuts down cleanly or is killed."""

import time

import psutil
import pytest
from jupyter_client.manager import start_new_kernel

START_EVERYTHING = """
from backendlab.services import redis_url, kafka_bootstrap
from backendlab import processes
redis_url(); kafka_bootstrap()
import os
print(os.getpid())
print(sorted(p.pid for p in processes.running()))
"""


def run(client, code: str) -> str:
    out = []

    def keep(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    client.execute_interactive(code, output_hook=keep, timeout=60)
    return "".join(out)


def gone(pids, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("ending", ["shutdown", "kill"])
def test_kernel_end_stops_embedded_services(clean_service_env, ending):
    clean_service_env.setenv("BACKENDLAB_EMBEDDED", "1")
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        output = run(client, START_EVERYTHING)
        kernel_pid, pids = (eval(line) for line in output.strip().splitlines()[-2:])
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids), output
    finally:
        client.stop_channels()
        if ending == "shutdown":
            manager.shutdown_kernel(now=False)
        else:
            psutil.Process(kernel_pid).kill()
            manager.cleanup_resources()
    assert gone(pids), f"still running after kernel {ending}: {pids}"


def test_kernel_kill_stops_server_workers_and_their_pools(clean_service_env):
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        output = run(client, """
import os, psutil
from backendlab.servers import start_server
server = start_server("eventloop", workers=2, pool_workers=2)
print(os.getpid())
print(sorted(p.pid for p in psutil.Process(server.pid).children(recursive=True)) + [server.pid])
""")
        kernel_pid, pids = (eval(line) for line in output.strip().splitlines()[-2:])
        assert len(pids) >= 3, output
    finally:
        client.stop_channels()
    psutil.Process(kernel_pid).kill()
    manager.cleanup_resources()
    assert gone(pids), f"server processes outlived the killed kernel: {pids}"
