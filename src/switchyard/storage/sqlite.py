"""SQLite storage: one connection, used from one worker thread, behind async methods.

sqlite3 calls block, so they run in a dedicated single-thread executor; the event loop never
waits on disk. Migrations are numbered SQL files applied in order, each in a transaction that
also records it; if one fails the server refuses to start rather than run on a half schema.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from switchyard.storage.base import MigrationError, Queries, Row
from switchyard.storage.schema import migrations, pending

T = TypeVar("T")


def _migrations() -> list[tuple[int, str, str]]:
    return migrations("sqlite")


class _Tx:
    """Statements on the transaction's connection, run in the database thread."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db

    async def fetchone(self, sql: str, *params: Any) -> Row | None:
        return await self._db._call(lambda c: _one(c.execute(sql, params).fetchone()))

    async def fetchall(self, sql: str, *params: Any) -> list[Row]:
        return await self._db._call(lambda c: [dict(r) for r in c.execute(sql, params)])

    async def execute(self, sql: str, *params: Any) -> int:
        return await self._db._call(lambda c: c.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._db._call(lambda c: c.executemany(sql, rows))


class SQLiteDatabase(_Tx):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__(self)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._tx_lock: asyncio.Lock | None = None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def connect_sync(self) -> None:
        """Open and migrate (blocking); used at start-up."""
        if self._conn is None:
            conn = self._executor.submit(self._open).result()
            try:
                self._executor.submit(migrate, conn).result()
            except BaseException:
                self._executor.submit(conn.close).result()
                raise
            self._conn = conn

    async def connect(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.connect_sync)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.connect_sync()
        assert self._conn is not None
        return self._conn

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self.conn
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._call(fn)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self.conn
        return self._executor.submit(fn, conn).result()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        if self._tx_lock is None:
            self._tx_lock = asyncio.Lock()
        async with self._tx_lock:  # one connection: transactions take turns
            await self._call(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield _Tx(self)
            except BaseException:
                await self._call(lambda c: c.execute("ROLLBACK"))
                raise
            await self._call(lambda c: c.execute("COMMIT"))

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._executor.submit(conn.close).result()
        self._executor.shutdown(wait=True)


def _one(row: sqlite3.Row | None) -> Row | None:
    return dict(row) if row is not None else None


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations; return the versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, sql in pending(done, _migrations()):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))", (version, name)
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {exc}") from None
        applied.append(version)
    return applied


def statements(sql: str) -> list[str]:
    """Split a script into statements, so each migration stays one transaction.

    executescript() would commit on its own. sqlite3.complete_statement knows SQL's
    comments, literals and trigger bodies, so a ";" inside them does not split.
    """
    found: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    leftover = [ln for ln in pending.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise MigrationError(f"migration ends with an incomplete statement: {pending.strip()!r}")
    return found


_statements = statements


def row_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None
