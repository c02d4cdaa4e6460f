"""Fixtures shared by the unit tests: a migrated SQLite database and a key store on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchyard.accounting.keys import KeyStore
from switchyard.storage.sqlite import SQLiteDatabase


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    database = SQLiteDatabase(tmp_path / "switchyard.db")
    await database.connect()
    yield database
    await database.close()


@pytest.fixture
async def keys(db: SQLiteDatabase) -> KeyStore:
    """No lookup cache, and the default (operator) account."""
    store = KeyStore(db, cache_seconds=0)
    await store.ensure_account()
    return store
