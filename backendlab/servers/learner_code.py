"""A lab server runs the learner's function: `--handler FILE.py:NAME` names it, and this module
imports it from that file (written there by `backendlab.checks.child`), so every lab server loads
learner code the same way."""

from __future__ import annotations

import importlib.util


def load_function(spec: str):
    """The function `NAME` of `FILE.py:NAME`, imported from that file."""
    path, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location("learner_handler", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)
