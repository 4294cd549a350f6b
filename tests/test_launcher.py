"""The launcher's pieces: the link it prints, the environment JupyterLab gets, its command line."""

import json
import os
import socket
from pathlib import Path

import pytest

from backendlab import launcher


def test_the_link_opens_notebook_00_with_the_token():
    assert launcher.start_url(8890, "abc") == (
        "http://127.0.0.1:8890/lab/tree/notebooks/00-start-here.ipynb?token=abc")


def test_jupyterlab_gets_the_venv_commands_first_and_no_news(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    env = launcher.jupyter_env(tmp_path)
    first = Path(env["PATH"].split(os.pathsep)[0])
    assert (first / "backendlab").is_file(), "a JupyterLab terminal finds `backendlab`"
    settings = json.loads((tmp_path / "config" / "labconfig" / "page_config.json").read_text())
    assert settings["disabledExtensions"] == launcher.DISABLED


def test_jupyterlab_listens_on_loopback_in_the_workspace_with_one_token(tmp_path):
    argv = launcher.jupyter_argv(8890, "abc", tmp_path)
    assert "--ServerApp.ip=127.0.0.1" in argv and f"--ServerApp.root_dir={tmp_path}" in argv
    assert [a for a in argv if "token" in a] == ["--IdentityProvider.token=abc"]


def test_a_taken_port_is_one_line_naming_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            launcher.run_lab(port, tmp_path / "work")
    assert str(stopped.value) == (f"error: port {port} on 127.0.0.1 is taken (another "
                                  f"JupyterLab?): run `make lab LAB_PORT={port + 2}`")
    assert not (tmp_path / "work").exists(), "nothing is created before the port is checked"
