"""The storage seam on both backends: migrations, queries, transactions, accounting SQL.

Every test taking ``backend`` runs on SQLite (a file in tmp_path) and on PostgreSQL (a
fresh schema in the database at SWITCHYARD_TEST_POSTGRES_URL, dropped afterwards). If
PostgreSQL is unreachable the PostgreSQL runs fail: CI provides it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import traceback
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from switchyard.accounting.keys import KeyStore
from switchyard.accounting.money import to_pico
from switchyard.accounting.records import GenerationRecord
from switchyard.accounting.views import load_generation
from switchyard.accounting.writer import write_batch
from switchyard.errors import NotFound, Unauthorized
from switchyard.storage import open_database
from switchyard.storage import postgres as pg
from switchyard.storage import sqlite as lite
from switchyard.storage.base import Database, MigrationError, StorageError

POSTGRES_URL = os.environ.get(
    "SWITCHYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class Backend:
    """Opens databases on one store: a SQLite file, or one PostgreSQL schema."""

    def __init__(self, kind: str, path: Path, schema: str) -> None:
        self.kind = kind
        self.path = path
        self.schema = schema
        self.opened: list[Database] = []
        self.integrity_error: type[Exception] = (
            sqlite3.IntegrityError if kind == "sqlite" else asyncpg.UniqueViolationError
        )

    def open(self) -> Database:
        db: Database
        if self.kind == "sqlite":
            db = lite.SQLiteDatabase(self.path)
        else:
            db = pg.PostgresDatabase(POSTGRES_URL, schema=self.schema, max_size=3)
        self.opened.append(db)
        return db

    async def connect(self) -> Database:
        db = self.open()
        await db.connect()
        return db

    def use_migrations(self, monkeypatch: pytest.MonkeyPatch, extra: list[str]) -> None:
        """Add migrations after the built-in ones (numbered from NEXT) with these scripts."""
        dialect = self.kind
        builtin = lite.migrations(dialect)
        added = [(NEXT + i, f"{NEXT + i:04d}_extra.sql", sql) for i, sql in enumerate(extra)]
        if self.kind == "sqlite":
            monkeypatch.setattr(lite, "_migrations", lambda: builtin + added)
        else:
            monkeypatch.setattr(pg, "migrations", lambda _dialect: builtin + added)


@asynccontextmanager
async def store(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    schema = f"sy_test_{uuid.uuid4().hex[:12]}"
    admin = None
    if kind == "postgres":
        try:
            admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"PostgreSQL at {pg.redact(POSTGRES_URL)} is unreachable: {exc}")
        await admin.execute(f"CREATE SCHEMA {schema}")
    found = Backend(kind, tmp_path / "switchyard.db", schema)
    try:
        yield found
    finally:
        for db in found.opened:
            await db.close()
        if admin is not None:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with store(request.param, tmp_path) as found:
        yield found


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[Backend]:
    async with store("postgres", tmp_path) as found:
        yield found


@pytest.fixture
async def db(backend: Backend) -> Database:
    return await backend.connect()


ALL = [v for v, _, _ in lite.migrations("sqlite")]
NEXT = len(ALL) + 1  # the number a test's extra migration takes


async def versions(db: Database) -> list[int]:
    rows = await db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


INSERT_ACCOUNT = "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)"


# --- pure helpers ---------------------------------------------------------------------------


def test_placeholders_become_numbered_outside_literals() -> None:
    assert pg.translate("SELECT * FROM t WHERE a = ? AND b IN (?, ?)") == (
        "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"
    )
    assert pg.translate("SELECT 'what?', 'it''s ?', ? FROM \"odd?name\"") == (
        "SELECT 'what?', 'it''s ?', $1 FROM \"odd?name\""
    )
    assert pg.translate("SELECT ? -- why?\n, a - ? / ? /* or ? */, ?") == (
        "SELECT $1 -- why?\n, a - $2 / $3 /* or ? */, $4"
    )
    assert pg.translate("SELECT 1") == "SELECT 1"


def test_rowcount_from_command_tags() -> None:
    assert pg.rowcount("INSERT 0 1") == 1
    assert pg.rowcount("INSERT 0 0") == 0
    assert pg.rowcount("UPDATE 3") == 3
    assert pg.rowcount("DELETE 12") == 12
    assert pg.rowcount("SELECT 5") == 0
    assert pg.rowcount("CREATE TABLE") == 0
    assert pg.rowcount("") == 0


def test_urls_are_redacted() -> None:
    assert pg.redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert pg.redact("postgresql://h/db?password=abc&x=1") == "postgresql://h/db?password=***&x=1"
    assert pg.redact("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_unreachable_postgres_is_a_storage_error_without_the_password() -> None:
    db = pg.PostgresDatabase("postgresql://sy:hunter2%21x@127.0.0.1:1/test", connect_timeout=2)
    with pytest.raises(StorageError) as caught:
        await db.connect()
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + repr(db)
    assert "hunter2" not in shown
    assert "127.0.0.1:1" in str(caught.value)
    # Queries on a database that never connected try again, and fail the same way.
    with pytest.raises(StorageError):
        await db.fetchone("SELECT 1")


def test_open_database_picks_postgres_by_url() -> None:
    db = open_database(POSTGRES_URL, Path("/nonexistent"))
    assert isinstance(db, pg.PostgresDatabase)
    assert db.dialect == "postgres"


# --- migrations -----------------------------------------------------------------------------


async def test_connect_migrates_a_fresh_database(backend: Backend) -> None:
    db = await backend.connect()
    assert db.dialect == backend.kind
    assert await versions(db) == ALL
    row = await db.fetchone("SELECT name, applied_at FROM schema_migrations WHERE version = 1")
    assert row is not None and row["name"] == "0001_keys.sql" and row["applied_at"]
    for table in ("accounts", "credit_grants", "api_keys", "generations", "activity_daily"):
        assert await db.fetchall(f"SELECT * FROM {table}") == []


async def test_connecting_again_applies_nothing(backend: Backend) -> None:
    first = await backend.connect()
    await first.execute(INSERT_ACCOUNT, "a", "A", "t")
    before = await first.fetchall("SELECT * FROM schema_migrations")
    await first.close()

    second = await backend.connect()
    # Re-running 0001 would have failed on CREATE TABLE, or lost the row.
    assert await second.fetchall("SELECT * FROM schema_migrations") == before
    assert await second.fetchall("SELECT id FROM accounts") == [{"id": "a"}]


async def test_a_database_from_a_newer_version_is_refused(backend: Backend) -> None:
    db = await backend.connect()
    await db.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        999,
        "0999_future.sql",
        "later",
    )
    await db.close()
    with pytest.raises(MigrationError, match="999"):
        await backend.connect()


async def test_a_failed_migration_leaves_nothing_behind(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = "CREATE TABLE half_done (x INTEGER);\n"
    backend.use_migrations(monkeypatch, [create + "INSERT INTO no_such_table VALUES (1);\n"])
    with pytest.raises(MigrationError, match=f"{NEXT:04d}_extra"):
        await backend.connect()
    # The built-in ones stayed applied; the extra one left neither its table nor its
    # record, so it can run again.
    backend.use_migrations(monkeypatch, [create])
    db = await backend.connect()
    assert await versions(db) == [*ALL, NEXT]
    assert await db.fetchall("SELECT x FROM half_done") == []


async def test_postgres_replicas_starting_together_migrate_once(postgres: Backend) -> None:
    dbs = [postgres.open() for _ in range(4)]
    await asyncio.gather(*(db.connect() for db in dbs))
    for db in dbs:
        assert await versions(db) == ALL


async def test_postgres_schema_from_url_options(postgres: Backend) -> None:
    db = pg.PostgresDatabase(f"{POSTGRES_URL}?options=-csearch_path%3D{postgres.schema}")
    postgres.opened.append(db)
    await db.connect()
    assert await db.fetchone("SELECT current_schema() AS s") == {"s": postgres.schema}
    assert await versions(db) == ALL


# --- queries --------------------------------------------------------------------------------


async def test_queries_with_placeholders_and_rowcounts(db: Database) -> None:
    assert await db.execute(INSERT_ACCOUNT, "a", "A", "t1") == 1
    await db.executemany(INSERT_ACCOUNT, [("b", "B", "t2"), ("c", "C", "t3")])
    await db.executemany(INSERT_ACCOUNT, [])
    assert await db.execute(INSERT_ACCOUNT + " ON CONFLICT (id) DO NOTHING", "a", "X", "t") == 0

    big = 4 * 10**18  # picodollars: four million dollars, near the top of a 64-bit integer
    assert (
        await db.execute(
            "UPDATE accounts SET total_credits = total_credits + ? WHERE id <> ?", big, "c"
        )
        == 2
    )
    assert await db.execute("UPDATE accounts SET name = ? WHERE id = ?", "X", "nobody") == 0

    assert await db.fetchone("SELECT id, name, total_credits FROM accounts WHERE id = ?", "a") == {
        "id": "a",
        "name": "A",
        "total_credits": big,
    }
    assert await db.fetchone("SELECT id FROM accounts WHERE id = ?", "nobody") is None
    assert await db.fetchall("SELECT id, total_credits FROM accounts ORDER BY id") == [
        {"id": "a", "total_credits": big},
        {"id": "b", "total_credits": big},
        {"id": "c", "total_credits": 0},
    ]
    assert await db.fetchall("SELECT id FROM accounts WHERE name = ?", "nobody") == []
    # A question mark inside a literal is text, not a parameter.
    assert await db.fetchone("SELECT '?' AS q, ? AS p", "x") == {"q": "?", "p": "x"}

    assert await db.execute("DELETE FROM accounts WHERE total_credits = ?", big) == 2
    assert await db.fetchall("SELECT id FROM accounts") == [{"id": "c"}]


async def test_transaction_commits_together(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute(INSERT_ACCOUNT, "a", "A", "t")
        await tx.executemany(INSERT_ACCOUNT, [("b", "B", "t")])
        assert await tx.execute("UPDATE accounts SET total_usage = ?", 7) == 2
        assert await tx.fetchone("SELECT count(*) AS n FROM accounts") == {"n": 2}
        assert len(await tx.fetchall("SELECT id FROM accounts")) == 2
    rows = await db.fetchall("SELECT id, total_usage FROM accounts ORDER BY id")
    assert rows == [{"id": "a", "total_usage": 7}, {"id": "b", "total_usage": 7}]


async def test_transaction_rolls_back_together(backend: Backend, db: Database) -> None:
    await db.execute(INSERT_ACCOUNT, "a", "A", "t")
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute(INSERT_ACCOUNT, "b", "B", "t")
            await tx.execute("UPDATE accounts SET name = ? WHERE id = ?", "changed", "a")
            raise RuntimeError("boom")
    with pytest.raises(backend.integrity_error):
        async with db.transaction() as tx:
            await tx.execute(INSERT_ACCOUNT, "c", "C", "t")
            await tx.execute(INSERT_ACCOUNT, "a", "duplicate", "t")
    assert await db.fetchall("SELECT id, name FROM accounts") == [{"id": "a", "name": "A"}]
    # The database is still usable afterwards.
    async with db.transaction() as tx:
        await tx.execute(INSERT_ACCOUNT, "d", "D", "t")
    assert len(await db.fetchall("SELECT id FROM accounts")) == 2


# --- the accounting SQL ---------------------------------------------------------------------


async def test_key_store(db: Database) -> None:
    store = KeyStore(db)
    account = await store.ensure_account("acme", "Acme", enforce_balance=True)
    assert (account.name, account.enforce_balance, account.total_credits) == ("Acme", True, 0)
    assert (await store.ensure_account("acme", "Renamed")).name == "Acme"
    await store.ensure_account()  # the default account
    assert [a.id for a in await store.accounts()] == ["acme", "default"]

    account = await store.add_credits("acme", Decimal("12.5"), note="top-up")
    assert account.total_credits == to_pico(Decimal("12.5")) == 12_500_000_000_000
    with pytest.raises(NotFound):
        await store.add_credits("nobody", Decimal(1))
    grants = await db.fetchall("SELECT account_id, amount, note FROM credit_grants")
    assert grants == [{"account_id": "acme", "amount": 12_500_000_000_000, "note": "top-up"}]

    expires = dt.datetime(2099, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    secret, key = await store.create_key(
        name="ci", account_id="acme", limit=Decimal("5.25"), limit_reset="daily", expires_at=expires
    )
    assert (key.name, key.kind, key.limit, key.limit_reset) == (
        "ci",
        "inference",
        Decimal("5.25"),
        "daily",
    )
    assert key.expires_at == expires and not key.disabled and key.updated_at is None
    _, admin = await store.create_key(name="admin", account_id="acme", kind="management")
    await store.create_key(name="elsewhere")
    assert await store.count_keys() == 3
    assert {k.hash for k in await store.list_keys("acme")} == {key.hash, admin.hash}
    assert len(await store.list_keys(limit=2)) == 2
    assert len(await store.list_keys(offset=2, limit=2)) == 1
    assert (await store.authenticate(f"Bearer {secret}")).hash == key.hash
    usage = await store.usage_row(key.hash)
    assert usage is not None and usage["usage_total"] == 0 and usage["usage_day"] is None

    updated = await store.update_key(key.hash, {"name": "ci-2", "disabled": True, "limit": None})
    assert (updated.name, updated.disabled, updated.limit) == ("ci-2", True, None)
    assert updated.updated_at is not None
    assert [k.hash for k in await store.list_keys("acme", include_disabled=False)] == [admin.hash]
    with pytest.raises(Unauthorized, match="disabled"):
        await store.authenticate(f"Bearer {secret}")
    with pytest.raises(NotFound):
        await store.update_key("no-such-hash", {"name": "x"})

    await store.delete_key(key.hash)
    with pytest.raises(NotFound):
        await store.delete_key(key.hash)
    with pytest.raises(Unauthorized, match="Invalid"):
        await store.authenticate(f"Bearer {secret}")
    assert await store.count_keys() == 2


def generation(gen_id: str, key_hash: str, cost: int, **changes: Any) -> GenerationRecord:
    record = GenerationRecord(
        id=gen_id,
        account_id="acme",
        key_hash=key_hash,
        created_at="2026-03-04T10:00:00+00:00",
        day="2026-03-04",
        model="openai/gpt-4o",
        endpoint="openai",
        provider_name="OpenAI",
        streamed=True,
        cancelled=False,
        finish_reason="stop",
        native_finish_reason="stop",
        latency_ms=120.5,
        generation_time_ms=980.25,
        tokens_prompt=100,
        tokens_completion=20,
        native_tokens_cached=30,
        native_tokens_reasoning=5,
        num_media_prompt=0,
        total_cost=cost,
        cache_discount=11,
        http_referer="https://example.com",
        app_title="tests",
        user_id=None,
        session_id="s-1",
        provider_responses=[{"provider": "OpenAI", "status": 200, "latency": 120}],
    )
    return msgspec.structs.replace(record, **changes)


ACTIVITY = (
    "SELECT day, model, endpoint, provider_name, requests, prompt_tokens, completion_tokens,"
    " reasoning_tokens, cached_tokens, usage FROM activity_daily ORDER BY day, model"
)


async def test_write_batch_counts_once(db: Database) -> None:
    store = KeyStore(db)
    await store.ensure_account("acme", "Acme", enforce_balance=True)
    _, key = await store.create_key(name="k", account_id="acme")
    batch = [
        generation("gen-1", key.hash, 1_500_000),
        generation("gen-2", key.hash, 2_500_000, tokens_prompt=50, streamed=False),
        generation("gen-3", key.hash, 0, model="local/smollm2", endpoint=None, provider_name=None),
    ]

    async def snapshot() -> tuple[Any, ...]:
        account = await store.account("acme")
        assert account is not None
        return (
            await store.usage_row(key.hash),
            account.total_usage,
            await db.fetchall(ACTIVITY),
            await db.fetchall("SELECT id FROM generations ORDER BY id"),
        )

    assert await write_batch(db, batch) == 3
    usage, total_usage, activity, generations = await snapshot()
    assert usage == {
        "usage_total": 4_000_000,
        "usage_day": "2026-03-04",
        "usage_daily": 4_000_000,
        "usage_week": "2026-03-02",
        "usage_weekly": 4_000_000,
        "usage_month": "2026-03",
        "usage_monthly": 4_000_000,
    }
    assert total_usage == 4_000_000
    common = {"day": "2026-03-04", "completion_tokens": 20, "reasoning_tokens": 5}
    assert activity == [
        {
            **common,
            "model": "local/smollm2",
            "endpoint": "",
            "provider_name": "",
            "requests": 1,
            "prompt_tokens": 100,
            "cached_tokens": 30,
            "usage": 0,
        },
        {
            **common,
            "model": "openai/gpt-4o",
            "endpoint": "openai",
            "provider_name": "OpenAI",
            "requests": 2,
            "prompt_tokens": 150,
            "completion_tokens": 40,
            "reasoning_tokens": 10,
            "cached_tokens": 60,
            "usage": 4_000_000,
        },
    ]
    assert generations == [{"id": "gen-1"}, {"id": "gen-2"}, {"id": "gen-3"}]
    assert await load_generation(db, "gen-2") == batch[1]

    # Replaying the same journal adds nothing.
    before = await snapshot()
    assert await write_batch(db, batch) == 0
    assert await snapshot() == before

    # A batch mixing an old generation with a new one counts only the new one; a new day
    # restarts the daily window but not the week's or the month's.
    later = generation(
        "gen-4", key.hash, 300, created_at="2026-03-05T23:30:00+00:00", day="2026-03-05"
    )
    assert await write_batch(db, [batch[0], later]) == 1
    usage, total_usage, activity, _ = await snapshot()
    assert usage is not None
    assert (usage["usage_total"], usage["usage_day"], usage["usage_daily"]) == (
        4_000_300,
        "2026-03-05",
        300,
    )
    assert (usage["usage_weekly"], usage["usage_monthly"]) == (4_000_300, 4_000_300)
    assert total_usage == 4_000_300
    assert [(a["day"], a["requests"], a["usage"]) for a in activity] == [
        ("2026-03-04", 1, 0),
        ("2026-03-04", 2, 4_000_000),
        ("2026-03-05", 1, 300),
    ]


async def test_write_batch_sums_across_days_and_skips_duplicates_and_replays(
    db: Database,
) -> None:
    store = KeyStore(db)
    await store.ensure_account("acme", "Acme", enforce_balance=True)
    _, key = await store.create_key(name="k", account_id="acme")
    first = generation("gen-a", key.hash, 1_000_000)
    next_day = generation(
        "gen-b",
        key.hash,
        2_000_000,
        created_at="2026-03-05T09:00:00+00:00",
        day="2026-03-05",
        app_title="other",
    )
    assert await write_batch(db, [first]) == 1
    # A replay holding a written generation, a new one, and the new one twice.
    assert await write_batch(db, [first, next_day, next_day]) == 1

    assert await store.usage_row(key.hash) == {
        "usage_total": 3_000_000,
        "usage_day": "2026-03-05",
        "usage_daily": 2_000_000,  # the new day starts afresh
        "usage_week": "2026-03-02",
        "usage_weekly": 3_000_000,
        "usage_month": "2026-03",
        "usage_monthly": 3_000_000,
    }
    account = await store.account("acme")
    assert account is not None and account.total_usage == 3_000_000
    activity = await db.fetchall(ACTIVITY)
    assert [(row["day"], row["requests"], row["usage"]) for row in activity] == [
        ("2026-03-04", 1, 1_000_000),
        ("2026-03-05", 1, 2_000_000),
    ]
    apps = await db.fetchall(
        "SELECT day, app, requests, prompt_tokens FROM app_activity_daily ORDER BY day"
    )
    assert apps == [
        {"day": "2026-03-04", "app": "tests", "requests": 1, "prompt_tokens": 100},
        {"day": "2026-03-05", "app": "other", "requests": 1, "prompt_tokens": 100},
    ]
