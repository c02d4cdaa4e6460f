"""PostgreSQL storage: an asyncpg connection pool behind the same async methods as SQLite.

SQL is written once with ``?`` placeholders; here they become ``$1, $2, ...`` (translated once
per statement text and cached; asyncpg then caches the prepared statement per connection).
Migrations are the numbered files in ``migrations/postgres``, each applied in one transaction
together with its record in ``schema_migrations``, under an advisory lock so that replicas
starting together take turns; a failed migration, or a database that records versions this
code does not know, stops the start (MigrationError).

The schema is whatever ``search_path`` selects: the server default, ``?search_path=name`` or
``?options=-csearch_path%3Dname`` in the URL, or the ``schema`` argument (it must exist).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import asyncpg

from switchyard.storage.base import MigrationError, Queries, Row, StorageError
from switchyard.storage.schema import migrations, pending

# The advisory lock that serialises migrations across processes (b"swtchyrd" as a bigint).
MIGRATION_LOCK = int.from_bytes(b"swtchyrd", "big") & 0x7FFF_FFFF_FFFF_FFFF

# Failures of the connection itself (as opposed to a statement the server refused).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, unreachable, reset, timed out (TimeoutError is an OSError)
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # unknown role, pg_hba refusal
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.InvalidCatalogNameError,  # no such database
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ClientConfigurationError,  # a malformed URL
)
# Opening the pool can also fail on a URL that does not parse.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (*_CONNECTION_ERRORS, ValueError)


class _QuietPoolRefills(logging.Filter):
    """While the database is away, asyncpg logs a full traceback every time it fails to
    refill the pool (several a second). The usage writer and the 503s already say it, once
    and in our words; the pool's own reports of a lost connection are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _CONNECTION_ERRORS)


logging.getLogger("asyncpg.pool").addFilter(_QuietPoolRefills())


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` placeholders to ``$n``, leaving quoted literals, identifiers and comments alone."""
    out: list[str] = []
    n = 0
    i = 0
    length = len(sql)
    while i < length:
        ch = sql[i]
        if ch == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        elif ch in "'\"":
            # A doubled quote inside is an escaped quote: the scan closes and reopens.
            end = sql.find(ch, i + 1)
            end = length if end < 0 else end + 1
            out.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = length if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = length if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        else:
            # Copy the run of ordinary characters up to the next special one.
            j = i + 1
            while j < length and sql[j] not in "?'\"-/":
                j += 1
            out.append(sql[i:j])
            i = j
    return "".join(out)


def rowcount(status: str) -> int:
    """Rows changed, from a command tag: ``INSERT 0 1``, ``UPDATE 3``, ``DELETE 2``."""
    verb, _, rest = status.partition(" ")
    if verb in ("INSERT", "UPDATE", "DELETE", "MERGE"):
        last = rest.rsplit(" ", 1)[-1]
        if last.isdigit():
            return int(last)
    return 0


def secrets_in(url: str) -> list[str]:
    """Every password the URL carries (in the user info or the query), as written and decoded."""
    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if "password" in k]
    spelled = {s for value in found for s in (value, unquote(value), quote(value, safe=""))}
    return sorted((s for s in spelled if s), key=len, reverse=True)


def redact(url: str) -> str:
    """The URL (or any text) with the URL's passwords replaced by ``***``."""
    return scrub(url, secrets_in(url))


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class _Statements:
    """The Queries methods on an asyncpg pool or connection (both offer the same calls)."""

    def __init__(self, target: Any, db: PostgresDatabase) -> None:
        self._target = target
        self._db = db

    async def fetchone(self, sql: str, *params: Any) -> Row | None:
        try:
            row = await self._target.fetchrow(translate(sql), *params)
        except _CONNECTION_ERRORS as exc:
            raise self._db._failure("query", exc) from None
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, *params: Any) -> list[Row]:
        try:
            rows = await self._target.fetch(translate(sql), *params)
        except _CONNECTION_ERRORS as exc:
            raise self._db._failure("query", exc) from None
        return [dict(row) for row in rows]

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            status = await self._target.execute(translate(sql), *params)
        except _CONNECTION_ERRORS as exc:
            raise self._db._failure("statement", exc) from None
        return rowcount(cast(str, status))

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        try:
            await self._target.executemany(translate(sql), rows)
        except _CONNECTION_ERRORS as exc:
            raise self._db._failure("statement", exc) from None


class PostgresDatabase:
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.schema = schema
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool: Any = None
        self._statements: _Statements | None = None
        self._connecting = asyncio.Lock()
        try:
            self._secrets = secrets_in(url)
        except ValueError:
            raise StorageError("the PostgreSQL URL does not parse") from None

    def __repr__(self) -> str:
        return f"PostgresDatabase({scrub(self.url, self._secrets)!r})"

    # --- errors ----------------------------------------------------------------------------

    def _failure(self, operation: str, exc: BaseException) -> StorageError:
        detail = str(exc) or type(exc).__name__
        message = f"PostgreSQL {operation} failed ({self.url}): {detail}"
        return StorageError(scrub(message, self._secrets))

    # --- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the pool and apply pending migrations."""
        async with self._connecting:
            if self._pool is not None:
                return
            settings = {"application_name": "switchyard"}
            if self.schema is not None:
                settings["search_path"] = self.schema
            try:
                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._connect_timeout,
                    server_settings=settings,
                )
            except _CONNECT_ERRORS as exc:
                raise self._failure("connect", exc) from None
            try:
                async with pool.acquire() as conn:
                    await migrate(conn)
            except _CONNECTION_ERRORS as exc:
                await _close_pool(pool)
                raise self._failure("migration", exc) from None
            except BaseException:
                await _close_pool(pool)
                raise
            self._pool = pool
            self._statements = _Statements(pool, self)

    async def _ready(self) -> _Statements:
        if self._statements is None:
            await self.connect()
        assert self._statements is not None
        return self._statements

    async def close(self) -> None:
        async with self._connecting:
            pool, self._pool, self._statements = self._pool, None, None
            if pool is not None:
                await _close_pool(pool)

    # --- queries ---------------------------------------------------------------------------

    async def fetchone(self, sql: str, *params: Any) -> Row | None:
        return await (await self._ready()).fetchone(sql, *params)

    async def fetchall(self, sql: str, *params: Any) -> list[Row]:
        return await (await self._ready()).fetchall(sql, *params)

    async def execute(self, sql: str, *params: Any) -> int:
        return await (await self._ready()).execute(sql, *params)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await (await self._ready()).executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        """One pooled connection for the block: its statements commit together or not at all."""
        await self._ready()
        pool = self._pool
        try:
            conn = await pool.acquire()
        except _CONNECTION_ERRORS as exc:
            raise self._failure("connect", exc) from None
        try:
            tx = conn.transaction()
            try:
                await tx.start()
            except _CONNECTION_ERRORS as exc:
                raise self._failure("transaction", exc) from None
            try:
                yield _Statements(conn, self)
            except BaseException:
                # A lost connection cannot roll back, but the server already has.
                with suppress(*_CONNECTION_ERRORS):
                    await tx.rollback()
                raise
            try:
                await tx.commit()
            except _CONNECTION_ERRORS as exc:
                raise self._failure("commit", exc) from None
        finally:
            await pool.release(conn)


async def _close_pool(pool: Any) -> None:
    try:
        await asyncio.wait_for(pool.close(), 10)
    except _CONNECTION_ERRORS:  # TimeoutError included
        pool.terminate()


async def migrate(conn: Any) -> list[int]:
    """Apply pending migrations on ``conn`` (an asyncpg connection); return those applied.

    A session advisory lock makes concurrent starters take turns; whoever comes second
    finds the work done. The server drops the lock if the connection is lost.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        return await _migrate_locked(conn)
    finally:
        with suppress(*_CONNECTION_ERRORS):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def _migrate_locked(conn: Any) -> list[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, sql in pending(done, migrations("postgres")):
        try:
            async with conn.transaction():
                await conn.execute(sql)  # no arguments: the whole script, all statements
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    version,
                    name,
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                )
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _CONNECTION_ERRORS):
                raise
            raise MigrationError(f"migration {name} failed: {exc}") from None
        applied.append(version)
    return applied
