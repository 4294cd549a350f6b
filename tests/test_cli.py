"""The command line answers mistakes with a usage line, not a traceback."""

import subprocess
import sys


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backendlab", *args], capture_output=True,
                          text=True, timeout=60)


def test_no_command_prints_help():
    done = cli()
    assert done.returncode == 2 and "doctor" in done.stdout and "serve" in done.stdout


def test_unknown_server_is_named_with_the_known_ones():
    done = cli("serve", "nope")
    assert done.returncode == 2
    assert "unknown server 'nope'" in done.stdout and "eventloop" in done.stdout
    assert "Traceback" not in done.stderr


def test_serve_help_lists_the_server_options():
    done = cli("serve", "eventloop", "--help")
    assert done.returncode == 0 and "--port" in done.stdout and "--workers" in done.stdout
