"""Persistence: SQLite in the data directory by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path

from switchyard.storage.base import Database, MigrationError, StorageError


def open_database(url: str | None, data_dir: Path) -> Database:
    """``None`` or ``sqlite:///path``: SQLite; ``postgresql://...``: PostgreSQL."""
    if url is None or url.startswith("sqlite:"):
        from switchyard.storage.sqlite import SQLiteDatabase

        path = Path(url.removeprefix("sqlite:///")) if url else data_dir / "switchyard.db"
        return SQLiteDatabase(path)
    if url.startswith(("postgresql://", "postgres://")):
        from switchyard.storage.postgres import PostgresDatabase

        return PostgresDatabase(url)
    raise StorageError("database_url must start with sqlite:/// or postgresql://")


__all__ = ["Database", "MigrationError", "StorageError", "open_database"]
