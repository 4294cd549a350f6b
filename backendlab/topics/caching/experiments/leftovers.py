"""What notebook 05's runs left behind: Redis keys under their namespaces, their SQL tables, and
their server processes still alive. The notebook asserts all three are zero at its end, so the
claim "every run removes what it made" is checked rather than promised."""

from __future__ import annotations

import contextlib
import sqlite3

from backendlab.processes import ManagedProcess
from backendlab.topics.caching.products import connect, table_names
from backendlab.services import database_url, redis_client
from backendlab.services.redis import keys_under

_namespaces: list[str] = []
_table_prefixes: list[str] = []
_processes: list[ManagedProcess] = []


def track_run(namespace: str, tables: str) -> None:
    """Remember a run's key namespace and table prefix (called by `Shop`)."""
    _namespaces.append(namespace)
    _table_prefixes.append(tables)


def track_process(process: ManagedProcess) -> None:
    """Remember a server (or Redis) process an experiment started."""
    _processes.append(process)


def _table_exists(conn, name: str) -> bool:
    if isinstance(conn, sqlite3.Connection):
        sql = "select count(*) from sqlite_master where type = 'table' and name = ?"
    else:
        sql = "select count(*) from information_schema.tables where table_name = %s"
    return conn.execute(sql, (name,)).fetchone()[0] > 0


def leftovers() -> dict[str, int]:
    """Keys, tables and live processes left by this process's runs (all 0 after clean runs);
    other users of a shared Redis or database do not count."""
    with contextlib.closing(redis_client()) as client:
        keys = sum(len(keys_under(client, namespace)) for namespace in _namespaces)
    with contextlib.closing(connect(database_url())) as conn:
        tables = sum(_table_exists(conn, name)
                     for prefix in _table_prefixes for name in table_names(prefix))
    return {"runs": len(_namespaces), "keys": keys, "tables": tables,
            "processes": sum(process.alive() for process in _processes)}
