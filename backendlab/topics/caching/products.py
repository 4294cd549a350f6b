"""The products database of notebook 05: its schema, seed data, and the deliberately slow queries.

Works on SQLite and PostgreSQL. Table names carry a run prefix so many runs (a whole class on one
database) never collide; names cannot be SQL parameters, so the prefix is validated instead.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

CATEGORIES = ("books", "games", "garden", "music")
USERS = ("alice", "bob", "carol", "dan")
PRODUCTS_PER_CATEGORY = 40
ORDERS_PER_USER = 12
MAX_ID = 2**31 - 1
TABLE_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def placeholder(url: str) -> str:
    """The DB-API parameter marker of the database at `url`: `?` for SQLite, `%s` for psycopg."""
    return "?" if url.startswith("sqlite") else "%s"


def connect(url: str):
    """An autocommit DB-API connection to SQLite or PostgreSQL.

    Not `backendlab.services.sql.connect`: importing the services package loads boto3, a third of a
    second added to every server start, and the server is always given its database URL.
    """
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10, check_same_thread=False,
                               isolation_level=None)
    import psycopg

    return psycopg.connect(url, connect_timeout=3, autocommit=True)


def table_names(prefix: str) -> tuple[str, str]:
    """(products, orders) table names for a validated prefix."""
    if not TABLE_PREFIX.match(prefix):
        raise ValueError(f"table prefix {prefix!r} must match {TABLE_PREFIX.pattern}")
    return f"{prefix}_products", f"{prefix}_orders"


def product_ids(category: str) -> list[int]:
    """The ids of a category's seeded products, in the order pages list them."""
    first = CATEGORIES.index(category) * 1000 + 1
    return list(range(first, first + PRODUCTS_PER_CATEGORY))


def order_ids(user: str) -> list[int]:
    """The ids of a user's seeded orders, in the order pages list them."""
    first = USERS.index(user) * 100 + 1
    return list(range(first, first + ORDERS_PER_USER))


def create_tables(conn, prefix: str) -> None:
    """Create and seed the products and orders tables of `prefix` (an autocommit connection)."""
    products, orders = table_names(prefix)
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(f"create table {products} (id integer primary key, category text not null, "
                 "name text not null, price double precision not null, "
                 "version integer not null default 0)")
    conn.execute(f"create index {products}_category on {products} (category, id)")
    conn.execute(f"create table {orders} (id integer primary key, user_name text not null, "
                 "item text not null, total double precision not null)")
    cursor = conn.cursor()
    cursor.executemany(f"insert into {products} (id, category, name, price) values "
                       f"({mark}, {mark}, {mark}, {mark})",
                       [(pid, category, f"{category} item {pid}", 10.0 + pid % 90)
                        for category in CATEGORIES for pid in product_ids(category)])
    cursor.executemany(f"insert into {orders} (id, user_name, item, total) values "
                       f"({mark}, {mark}, {mark}, {mark})",
                       [(oid, user, f"order {oid % 100} of {user}", 5.0 * (oid % 100) + u)
                        for u, user in enumerate(USERS) for oid in order_ids(user)])


def drop_tables(conn, prefix: str) -> None:
    """Drop the tables of `prefix`, if they exist (an autocommit connection)."""
    for table in reversed(table_names(prefix)):
        conn.execute(f"drop table if exists {table}")


class Catalog:
    """Page queries (each made slow by `delay` seconds) and price updates, off the event loop.

    Each worker thread keeps one autocommit connection: the thread pool is the connection pool.
    """

    def __init__(self, url: str, prefix: str, delay: float, threads: int = 16):
        self.url, self.delay = url, delay
        self.products, self.orders = table_names(prefix)
        self.mark = placeholder(url)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="db")
        self._local = threading.local()
        self._connections: list = []
        self.reads = self.writes = 0

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.url)
            self._connections.append(conn)
        return conn

    def _query(self, sql: str, args: tuple, slow: bool = True) -> list[tuple]:
        if slow:
            time.sleep(self.delay)
        return self._conn().execute(sql.replace("?", self.mark), args).fetchall()

    async def _run(self, sql: str, args: tuple, slow: bool = True) -> list[tuple]:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._query, sql, args,
                                                                slow)

    async def product_page(self, category: str, page: int, size: int) -> list[dict]:
        self.reads += 1
        rows = await self._run(f"select id, name, price, version from {self.products} "
                               "where category = ? order by id limit ? offset ?",
                               (category, size, (page - 1) * size))
        return [{"id": i, "name": n, "price": float(p), "version": v} for i, n, p, v in rows]

    async def order_page(self, user: str, page: int, size: int) -> list[dict]:
        self.reads += 1
        rows = await self._run(f"select id, item, total from {self.orders} "
                               "where user_name = ? order by id limit ? offset ?",
                               (user, size, (page - 1) * size))
        return [{"id": i, "item": item, "total": float(t)} for i, item, t in rows]

    async def set_price(self, product_id: int, price: float) -> tuple[str, int] | None:
        """Change a price and bump the row's version; (category, version), or None if no such id."""
        self.writes += 1
        rows = await self._run(f"update {self.products} set price = ?, version = version + 1 "
                               "where id = ? returning category, version", (price, product_id),
                               slow=False)
        return tuple(rows[0]) if rows else None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for conn in self._connections:
            conn.close()
