"""SQLite migrations: applied once, in order, atomically; never on a newer schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.storage import sqlite as storage
from switchyard.storage.sqlite import MigrationError, SQLiteDatabase, migrate


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


ALL = [v for v, _, _ in storage._migrations()]
NEXT = len(ALL) + 1  # the number a test's extra migration takes


def versions(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "raw.db", isolation_level=None)
    yield c
    c.close()


def test_builtin_migrations_are_numbered_from_one() -> None:
    found = storage._migrations()
    assert [v for v, _, _ in found] == list(range(1, len(found) + 1))
    assert found[0][1] == "0001_keys.sql"


def test_fresh_database_migrates(conn: sqlite3.Connection) -> None:
    assert migrate(conn) == ALL
    assert {"schema_migrations", "accounts", "api_keys"} <= tables(conn)
    assert versions(conn) == ALL
    name, applied_at = conn.execute(
        "SELECT name, applied_at FROM schema_migrations WHERE version = 1"
    ).fetchone()
    assert name == "0001_keys.sql"
    assert applied_at


def test_second_migrate_applies_nothing(conn: sqlite3.Connection) -> None:
    migrate(conn)
    assert migrate(conn) == []
    assert versions(conn) == ALL


def test_reconnecting_database_does_not_reapply(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "switchyard.db"
    first = SQLiteDatabase(path)
    first.connect_sync()
    first.run_sync(
        lambda c: c.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 'now')")
    )
    first.close_sync()

    second = SQLiteDatabase(path)
    second.connect_sync()
    assert second.run_sync(versions) == ALL
    # Re-running 0001 would have failed on CREATE TABLE, or lost the row.
    assert second.run_sync(lambda c: c.execute("SELECT count(*) FROM accounts").fetchone()[0]) == 1
    assert migrate(second.conn) == []
    second.close_sync()


def test_connection_settings(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "s.db")
    try:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            db.run_sync(
                lambda c: c.execute(
                    "INSERT INTO api_keys (hash, account_id, kind, name, label, created_at)"
                    " VALUES ('h', 'no-such-account', 'inference', 'n', 'l', 'now')"
                )
            )
    finally:
        db.close_sync()


async def test_async_run(tmp_path: Path) -> None:
    db = SQLiteDatabase(tmp_path / "s.db")
    try:
        assert await db.run(versions) == ALL
    finally:
        db.close_sync()


def test_unknown_future_migration_is_refused(conn: sqlite3.Connection) -> None:
    migrate(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'later')")
    with pytest.raises(MigrationError, match="999"):
        migrate(conn)


def test_future_database_refused_on_connect(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    raw = sqlite3.connect(path, isolation_level=None)
    migrate(raw)
    raw.execute("INSERT INTO schema_migrations VALUES (?, 'new.sql', 'later')", (NEXT,))
    raw.close()
    db = SQLiteDatabase(path)
    try:
        with pytest.raises(MigrationError):
            db.connect_sync()
    finally:
        db.close_sync()


BROKEN = """
-- Half of this succeeds before the second statement fails.
CREATE TABLE partial (id INTEGER PRIMARY KEY);
INSERT INTO partial VALUES (1);
CREATE TABLE broken (;
"""


def test_failing_migration_rolls_back(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage._migrations()
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, (NEXT, "next_broken.sql", BROKEN)])
    with pytest.raises(MigrationError, match=r"next_broken\.sql"):
        migrate(conn)
    assert "partial" not in tables(conn)
    assert "broken" not in tables(conn)
    assert versions(conn) == ALL  # the good migration before it stays applied
    assert "api_keys" in tables(conn)
    assert not conn.in_transaction


def test_failed_migration_is_retried_when_fixed(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage._migrations()
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, (NEXT, "next_x.sql", BROKEN)])
    with pytest.raises(MigrationError):
        migrate(conn)
    fixed = "CREATE TABLE partial (id INTEGER PRIMARY KEY);"
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, (NEXT, "next_x.sql", fixed)])
    assert migrate(conn) == [NEXT]
    assert "partial" in tables(conn)


def test_first_migration_failing_leaves_no_tables(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_migrations", lambda: [(1, "0001_broken.sql", BROKEN)])
    with pytest.raises(MigrationError):
        migrate(conn)
    assert tables(conn) == {"schema_migrations"}
    assert versions(conn) == []


def test_migrations_apply_in_version_order(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage._migrations()
    extra = [
        (NEXT, "next_a.sql", "CREATE TABLE a (id INTEGER);"),
        (NEXT + 1, "next_b.sql", "ALTER TABLE a ADD COLUMN b TEXT;\nCREATE INDEX a_b ON a(b);"),
    ]
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, *extra])
    assert migrate(conn) == [*ALL, NEXT, NEXT + 1]
    columns = [row[1] for row in conn.execute("PRAGMA table_info(a)")]
    assert columns == ["id", "b"]


def test_semicolon_in_comment(conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    sql = "-- Usage records; one row per generation.\nCREATE TABLE usage (id INTEGER);\n"
    real = storage._migrations()
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, (NEXT, "next_usage.sql", sql)])
    assert migrate(conn) == [*ALL, NEXT]
    assert "usage" in tables(conn)
