"""The record of completed uploads: one SQL row per file, written only once the file is verified.

A row that points at nothing (an upload the client never finished) or a file with no row (an
upload nobody checked) are the two ways upload bookkeeping rots; the server writes the row after
checking the object, in one place. Each server run has its own table, so a class sharing one
database does not collide; it is dropped when the server stops.
"""

from __future__ import annotations

import re
import time
from contextlib import closing

from backendlab.services.sql import connect

COLUMNS = ("id", "owner", "key", "name", "size", "type", "created")


class FileTable:
    """The `files_<run>` table in the database at `url` (SQLite or PostgreSQL)."""

    def __init__(self, url: str, table: str):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", table):
            raise ValueError(f"not a safe table name: {table!r}")
        self.table, self.conn = table, connect(url)
        self.mark = "?" if url.startswith("sqlite") else "%s"
        self._execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, "
                      "owner TEXT NOT NULL, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
                      "size BIGINT NOT NULL, type TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)")

    def _execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement in its own transaction; a failed one is rolled back, since on
        PostgreSQL an aborted transaction refuses every later statement on the connection."""
        try:
            with closing(self.conn.cursor()) as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall() if cursor.description else []
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        return rows

    def add(self, file_id: str, owner: str, key: str, name: str, size: int, type_: str) -> dict:
        row = (file_id, owner, key, name, size, type_, time.time())
        marks = ", ".join([self.mark] * len(COLUMNS))
        self._execute(f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({marks})", row)
        return dict(zip(COLUMNS, row))

    def get(self, file_id: str) -> dict | None:
        rows = self._execute(f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE id = {self.mark}",
                             (file_id,))
        return dict(zip(COLUMNS, rows[0])) if rows else None

    def count(self) -> int:
        return self._execute(f"SELECT COUNT(*) FROM {self.table}")[0][0]

    def drop(self) -> None:
        self._execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.close()
