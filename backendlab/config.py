"""The suite's configuration: environment variables, then an optional `backendlab.env` file.

`backendlab.env` (KEY=VALUE lines) is looked for in the working directory and its parents, so a
notebook kernel started in `notebooks/` finds the one at the project root. `make services` writes
it with the Docker Compose addresses; deleting it switches back to embedded services.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

FILE_NAME = "backendlab.env"


def find_file(start: Path | None = None) -> Path | None:
    """The nearest backendlab.env at or above `start` (default: the working directory)."""
    explicit = os.environ.get("BACKENDLAB_CONFIG")
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=8)
def _read(path: Path, mtime: float) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def file_values() -> dict[str, str]:
    path = find_file()
    if path is None:
        return {}
    return _read(path, path.stat().st_mtime)


def get(name: str, default: str | None = None) -> str | None:
    """An environment variable if set, else the value in backendlab.env, else `default`."""
    if name in os.environ:
        return os.environ[name]
    return file_values().get(name, default)
