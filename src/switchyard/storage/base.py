"""The storage seam: a few async query methods that SQLite and PostgreSQL both provide.

SQL is written once, with ``?`` placeholders and portable syntax (``ON CONFLICT ... DO
UPDATE`` upserts, integers for money and booleans); each backend adapts placeholders.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from switchyard.errors import StorageUnavailable

RETRY_AFTER = 5.0  # seconds a client is asked to wait while the database is away

Row = dict[str, Any]


class MigrationError(Exception):
    """The schema could not be brought up to date; the server must not start."""


class StorageError(StorageUnavailable):
    """The database failed or cannot be reached.

    ``str(exc)`` (for logs and the CLI) names the operation and the cause, never the
    credentials; a client is only told that storage is unavailable, as a 503 with
    Retry-After, since the details are the operator's business.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(
            "The database is temporarily unavailable; retry shortly", retry_after=RETRY_AFTER
        )
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class Queries(Protocol):
    async def fetchone(self, sql: str, *params: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *params: Any) -> list[Row]: ...

    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...


class Database(Queries, Protocol):
    dialect: str

    async def connect(self) -> None:
        """Open the database and apply pending migrations (MigrationError if that fails)."""
        ...

    async def close(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """Statements inside commit together or not at all."""
        ...
