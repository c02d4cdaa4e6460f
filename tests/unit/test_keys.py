"""KeyStore: keys authenticate by hash; bad, disabled and expired keys are 401."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from switchyard.accounting.keys import KEY_PREFIX, KeyStore, hash_key, label_for, new_secret
from switchyard.errors import Unauthorized
from switchyard.storage.sqlite import SQLiteDatabase


@pytest.fixture
def store(keys: KeyStore) -> KeyStore:
    return keys


def set_column(db: SQLiteDatabase, key_hash: str, column: str, value: object) -> None:
    db.run_sync(
        lambda c: c.execute(f"UPDATE api_keys SET {column} = ? WHERE hash = ?", (value, key_hash))
    )


async def rejected(store: KeyStore, header: str | None) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        await store.authenticate(header)
    assert info.value.status == 401
    return info.value


def test_secret_shape() -> None:
    secret = new_secret()
    assert secret.startswith(KEY_PREFIX)
    assert len(secret) == len(KEY_PREFIX) + 64
    assert new_secret() != secret
    assert hash_key(secret) == hashlib.sha256(secret.encode()).hexdigest()
    label = label_for(secret)
    assert label.startswith(KEY_PREFIX) and label.endswith(secret[-3:])
    assert secret[len(KEY_PREFIX) + 3 : -3] not in label


async def test_created_key_authenticates(store: KeyStore) -> None:
    secret, record = await store.create_key(name="ci")
    found = await store.authenticate(f"Bearer {secret}")
    assert found == record
    assert (found.name, found.kind, found.account_id) == ("ci", "inference", "default")
    assert found.disabled is False and found.expires_at is None


async def test_scheme_is_case_insensitive(store: KeyStore) -> None:
    secret, record = await store.create_key(name="ci")
    assert (await store.authenticate(f"bearer {secret}")).hash == record.hash
    assert (await store.authenticate(f"BEARER   {secret}  ")).hash == record.hash


async def test_each_key_maps_to_its_own_record(store: KeyStore) -> None:
    a, _ = await store.create_key(name="a")
    b, _ = await store.create_key(name="b", kind="management")
    assert (await store.authenticate(f"Bearer {a}")).name == "a"
    found_b = await store.authenticate(f"Bearer {b}")
    assert (found_b.name, found_b.kind) == ("b", "management")
    assert await store.count_keys() == 2


async def test_wrong_key(store: KeyStore) -> None:
    secret, _ = await store.create_key(name="ci")
    wrong = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    exc = await rejected(store, f"Bearer {wrong}")
    assert "Invalid API key" in exc.message


@pytest.mark.parametrize("header", [None, ""])
async def test_missing_header(store: KeyStore, header: str | None) -> None:
    exc = await rejected(store, header)
    assert "Missing Authorization" in exc.message


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Bearer:"])
async def test_non_bearer_scheme(store: KeyStore, scheme: str) -> None:
    secret, _ = await store.create_key(name="ci")
    exc = await rejected(store, f"{scheme} {secret}")
    assert "Bearer" in exc.message


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    "])
async def test_bearer_without_key(store: KeyStore, header: str) -> None:
    await rejected(store, header)


async def test_bare_key_without_scheme(store: KeyStore) -> None:
    secret, _ = await store.create_key(name="ci")
    await rejected(store, secret)


async def test_disabled_key(db: SQLiteDatabase, store: KeyStore) -> None:
    secret, record = await store.create_key(name="ci")
    await store.authenticate(f"Bearer {secret}")
    set_column(db, record.hash, "disabled", 1)
    exc = await rejected(store, f"Bearer {secret}")
    assert "disabled" in exc.message


async def test_disabled_key_keeps_working_until_cache_expires(db: SQLiteDatabase) -> None:
    store = KeyStore(db, cache_seconds=3600)
    await store.ensure_account()
    secret, record = await store.create_key(name="ci")
    await store.authenticate(f"Bearer {secret}")
    set_column(db, record.hash, "disabled", 1)
    # Served from the cache: the documented bound on how long a disabled key keeps working.
    assert (await store.authenticate(f"Bearer {secret}")).disabled is False
    fresh = KeyStore(db, cache_seconds=3600)
    await rejected(fresh, f"Bearer {secret}")


async def test_expired_key(db: SQLiteDatabase, store: KeyStore) -> None:
    secret, record = await store.create_key(name="ci")
    set_column(db, record.hash, "expires_at", "2000-01-01T00:00:00+00:00")
    exc = await rejected(store, f"Bearer {secret}")
    assert "expired" in exc.message


async def test_key_expiring_in_future_works(db: SQLiteDatabase, store: KeyStore) -> None:
    secret, record = await store.create_key(name="ci")
    set_column(db, record.hash, "expires_at", "2999-01-01T00:00:00+00:00")
    found = await store.authenticate(f"Bearer {secret}")
    assert found.expires_at is not None and found.expires_at.year == 2999


async def test_expired_key_with_sqlite_timestamp(db: SQLiteDatabase, store: KeyStore) -> None:
    secret, record = await store.create_key(name="ci")
    db.run_sync(
        lambda c: c.execute(
            "UPDATE api_keys SET expires_at = datetime('now', '-1 day') WHERE hash = ?",
            (record.hash,),
        )
    )
    await rejected(store, f"Bearer {secret}")


async def test_secret_is_never_stored(db: SQLiteDatabase, store: KeyStore, tmp_path: Path) -> None:
    secret, record = await store.create_key(name="ci")
    rows = db.run_sync(lambda c: [tuple(r) for r in c.execute("SELECT * FROM api_keys")])
    assert len(rows) == 1
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert record.hash == digest
    assert digest in rows[0]
    random_part = secret.removeprefix(KEY_PREFIX)
    for value in rows[0]:
        assert not (isinstance(value, str) and random_part[3:-3] in value)
    # Nor anywhere on disk (database file and its write-ahead log).
    files = [p for p in tmp_path.iterdir() if p.name.startswith("switchyard.db")]
    on_disk = b"".join(p.read_bytes() for p in files)
    assert digest.encode() in on_disk  # the search does see what was written
    assert secret.encode() not in on_disk
    assert random_part[3:-3].encode() not in on_disk


async def test_list_keys(store: KeyStore) -> None:
    _, a = await store.create_key(name="a")
    _, b = await store.create_key(name="b")
    assert {r.hash for r in await store.list_keys()} == {a.hash, b.hash}


async def test_inference_key_from_x_api_key(store: KeyStore) -> None:
    secret, record = await store.create_key(name="anthropic-client")
    assert (await store.inference_key(None, secret)).hash == record.hash
    assert (await store.inference_key("", f" {secret} ")).hash == record.hash
    # Authorization wins when both are sent.
    with pytest.raises(Unauthorized):
        await store.inference_key("Bearer sk-sy-v1-wrong", secret)
    with pytest.raises(Unauthorized):
        await store.inference_key(None, "sk-sy-v1-wrong")
    with pytest.raises(Unauthorized):
        await store.inference_key(None, "  ")
