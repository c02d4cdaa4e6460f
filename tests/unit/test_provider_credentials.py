"""Provider keys sealed with the master key: what is stored, who can open it, who wins."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchyard.catalog import load_catalog
from switchyard.settings import ProviderConfig, Settings
from switchyard.storage import Database, open_database
from switchyard.storage.credentials import (
    MASTER_KEY_ENV,
    CredentialError,
    CredentialStore,
    master_key_from,
    new_master_key,
    seal,
    unseal,
    with_stored_keys,
)

SECRET = "sk-proj-" + "s3cr3t" * 8
MASTER = new_master_key()
OTHER = new_master_key()
CATALOG = load_catalog()


def key(text: str) -> bytes:
    found = master_key_from({MASTER_KEY_ENV: text})
    assert found is not None
    return found


def test_sealed_text_holds_no_trace_of_the_key() -> None:
    sealed = seal(key(MASTER), "openai", SECRET)
    assert SECRET not in sealed
    raw = base64.b64decode(sealed.removeprefix("v1:"))
    assert SECRET.encode() not in raw
    assert seal(key(MASTER), "openai", SECRET) != sealed  # a fresh nonce every time
    assert unseal(key(MASTER), "openai", sealed) == SECRET


def test_wrong_master_key_or_provider_does_not_open() -> None:
    sealed = seal(key(MASTER), "openai", SECRET)
    with pytest.raises(CredentialError, match="not the one the key was stored with"):
        unseal(key(OTHER), "openai", sealed)
    # Moved onto another provider's row, the key is refused rather than sent elsewhere.
    with pytest.raises(CredentialError, match="'anthropic'"):
        unseal(key(MASTER), "anthropic", sealed)


@pytest.mark.parametrize("bad", ["short", "x" * 44, base64.b64encode(b"k" * 16).decode()])
def test_malformed_master_keys_are_refused(bad: str) -> None:
    with pytest.raises(CredentialError, match="32 random bytes"):
        master_key_from({MASTER_KEY_ENV: bad})
    assert master_key_from({}) is None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(None, tmp_path)
    await database.connect()
    yield database
    await database.close()


async def test_stored_key_fills_in_where_config_and_env_have_none(db: Database) -> None:
    store = CredentialStore(db)
    await store.put("openai", seal(key(MASTER), "openai", SECRET))
    await store.put("anthropic", seal(key(MASTER), "anthropic", "sk-ant-stored"))
    settings = Settings(
        providers={
            "openai": ProviderConfig(base_url="http://sim/v1"),
            "anthropic": ProviderConfig(api_key="sk-ant-config"),
        }
    )
    env = {MASTER_KEY_ENV: MASTER}
    filled = await with_stored_keys(settings, CATALOG, db, env)
    assert filled.providers["openai"].api_key == SECRET
    assert filled.providers["openai"].base_url == "http://sim/v1"
    assert filled.providers["anthropic"].api_key == "sk-ant-config"  # the config file wins
    spec_env = CATALOG.providers["openai"].api_key_env
    assert spec_env
    from_env = await with_stored_keys(Settings(), CATALOG, db, {**env, spec_env: "sk-env"})
    assert "openai" not in from_env.providers  # the environment wins too


async def test_stored_rows_are_not_the_key(db: Database) -> None:
    await CredentialStore(db).put("openai", seal(key(MASTER), "openai", SECRET))
    rows = await db.fetchall("SELECT * FROM provider_credentials")
    assert len(rows) == 1
    assert all(SECRET not in str(value) for value in rows[0].values())


async def test_without_master_key_stored_keys_are_unused_and_said_so(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await CredentialStore(db).put("openai", seal(key(MASTER), "openai", SECRET))
    with caplog.at_level(logging.WARNING):
        settings = await with_stored_keys(Settings(), CATALOG, db, {})
    assert settings.providers == {}
    assert MASTER_KEY_ENV in caplog.text and "openai" in caplog.text


async def test_wrong_master_key_stops_the_start(db: Database) -> None:
    await CredentialStore(db).put("openai", seal(key(MASTER), "openai", SECRET))
    with pytest.raises(CredentialError, match="does not open the stored key for provider"):
        await with_stored_keys(Settings(), CATALOG, db, {MASTER_KEY_ENV: OTHER})


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_store_round_trip_on_both_backends(kind: str, tmp_path: Path) -> None:
    from tests.unit.test_database_backends import store

    async with store(kind, tmp_path) as backend:
        db = await backend.connect()
        credentials = CredentialStore(db)
        await credentials.put("openai", seal(key(MASTER), "openai", "first"))
        await credentials.put("openai", seal(key(MASTER), "openai", SECRET))  # replaces
        assert await credentials.unsealed(key(MASTER)) == {"openai": SECRET}
