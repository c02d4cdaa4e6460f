"""SQLite storage: one connection, used from one worker thread, behind async methods.

sqlite3 calls block, so they run in a dedicated single-thread executor; the event loop never
waits on disk. Migrations are numbered SQL files applied in order, each in a transaction that
also records it; if one fails the server refuses to start rather than run on a half schema.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class MigrationError(Exception):
    """The schema could not be brought up to date; the server must not start."""


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("switchyard.storage").joinpath("migrations", "sqlite")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text("utf-8")))
    return sorted(found)


class SQLiteDatabase:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

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
        """Open and migrate (blocking); used at start-up and by the CLI."""
        if self._conn is None:
            self._conn = self._open()
            migrate(self._conn)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.connect_sync()
        assert self._conn is not None
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self.conn)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._executor.submit(fn, self.conn).result()

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._executor.submit(conn.close).result()
        self._executor.shutdown(wait=True)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations; return the versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    known = _migrations()
    unknown = done - {v for v, _, _ in known}
    if unknown:
        raise MigrationError(
            f"database has migrations {sorted(unknown)} that this version does not know; "
            "it was written by a newer Switchyard"
        )
    applied = []
    for version, name, sql in known:
        if version in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(sql):
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


def _statements(sql: str) -> list[str]:
    """Split a script into statements, so each migration stays one transaction.

    executescript() would commit on its own. sqlite3.complete_statement knows SQL's
    comments, literals and trigger bodies, so a ";" inside them does not split.
    """
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    leftover = [ln for ln in pending.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise MigrationError(f"migration ends with an incomplete statement: {pending.strip()!r}")
    return statements


def row_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None
