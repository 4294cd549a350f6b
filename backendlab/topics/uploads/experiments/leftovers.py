"""What upload runs could leave behind, listed at a notebook's start and compared at its end."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

BUCKET_PREFIXES = ("backendlab-uploads-", "backendlab-lab02-", "backendlab-enforce-")


def leftovers() -> dict[str, set[str]]:
    """This suite's upload buckets, `upload_files_*` tables, upload temp folders and running
    server processes, as they are now. A notebook takes this at its start and asserts it is the
    same at its end: anything new was made by the run and not cleaned up."""
    from backendlab import processes
    from backendlab.services.s3 import s3_client
    from backendlab.services.sql import connect, database_url
    buckets = {b["Name"] for b in s3_client().list_buckets().get("Buckets", [])
               if b["Name"].startswith(BUCKET_PREFIXES)}
    url = database_url()
    query = ("SELECT name FROM sqlite_master WHERE type = 'table'" if url.startswith("sqlite")
             else "SELECT table_name FROM information_schema.tables")
    with contextlib.closing(connect(url)) as conn, contextlib.closing(conn.cursor()) as cursor:
        cursor.execute(query)
        tables = {row[0] for row in cursor.fetchall() if row[0].startswith("upload_files_")}
    folders = {p.name for p in Path(tempfile.gettempdir()).glob("backendlab-uploads-*")}
    servers = {f"{p.name} (pid {p.pid})" for p in processes.running() if p.name.startswith("server-")}
    return {"buckets": buckets, "tables": tables, "folders": folders, "servers": servers}
