"""Muting aiokafka's log for a block: the rebalances and refused connections a caller causes on
purpose, or reports in its own words, would otherwise print as warnings and errors."""

from __future__ import annotations

import contextlib
import logging


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.CRITICAL):
    """Raise logger `name` to `level` while the block runs, then restore its previous level."""
    log = logging.getLogger(name)
    previous = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(previous)
