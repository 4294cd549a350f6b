"""SQL: DATABASE_URL names a real PostgreSQL; otherwise a SQLite file in a temp folder.

SQLite needs no server process; the temp folder is removed when the process that made it exits,
however it exits (a keeper process removes it when the kernel is killed).
"""

from __future__ import annotations

from contextlib import closing
import shutil
import sqlite3
import tempfile
from pathlib import Path

from backendlab import processes
from backendlab.services.base import Service


def connect(url: str):
    """A DB-API connection for a `sqlite:///path` or `postgresql://` URL."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10, check_same_thread=False)
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        return psycopg.connect(url, connect_timeout=3)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


class SQLService(Service):
    name = "SQL"
    env_var = "DATABASE_URL"
    compose_service = "postgres"

    def probe(self, address: str) -> str:
        with closing(connect(address)) as conn:
            if address.startswith("sqlite"):
                return "SQLite " + conn.execute("select sqlite_version()").fetchone()[0]
            return "PostgreSQL " + conn.execute("show server_version").fetchone()[0]

    def start_embedded(self) -> str:
        folder = Path(tempfile.mkdtemp(prefix="backendlab-sql-"))
        self._keeper = processes.remove_when_gone(folder)
        self._folder = folder
        return f"sqlite:///{folder / 'backendlab.db'}"

    def stop(self) -> None:
        folder = getattr(self, "_folder", None)
        super().stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            self._keeper.stop()
            self._folder = None

    def describe(self) -> str:
        return "" if self._mode == "real" else "embedded SQLite file (no server)"


service = SQLService()


def database_url() -> str:
    """The database URL (creates the embedded SQLite file's folder on first use)."""
    return service.address()


def sql_connect():
    """A DB-API connection to the suite's database."""
    return connect(database_url())
