"""What the eventloop experiments share: CSV request headers and a server spooling into a fresh folder."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import httpx

from backendlab import datasets
from backendlab.servers import start_server

MB = datasets.MB
CSV_HEADERS = {"content-type": "text/csv"}


def post_file(url: str, path: Path, timeout: float = 300) -> httpx.Response:
    """POST the CSV file at `path` to `url`, streamed from disk."""
    with path.open("rb") as body:
        return httpx.post(url, content=body, headers=CSV_HEADERS, timeout=timeout)


@contextlib.contextmanager
def spool_server(**options):
    """An eventloop server spooling into a fresh temp folder; yields (server, folder)."""
    with tempfile.TemporaryDirectory(prefix="backendlab-spool-") as folder:
        with start_server("eventloop", spool_dir=folder, **options) as server:
            yield server, Path(folder)
