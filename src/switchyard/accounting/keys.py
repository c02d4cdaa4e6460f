"""Accounts and API keys: generated once, shown once, stored as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is the right tool (a slow password hash
would only add latency to every request). Lookups on the request path are served from a
short-lived in-memory cache so that authentication costs no database round trip; the
cache's lifetime bounds how long a disabled key keeps working on another process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from switchyard.accounting.money import from_pico, to_pico
from switchyard.errors import Forbidden, NotFound, Unauthorized
from switchyard.storage.base import Database, Row, StorageError

KEY_PREFIX = "sk-sy-v1-"
# While the database is unreachable, a key looked up this recently is still trusted as it
# was (a key disabled meanwhile keeps working until the database is back, or this long).
STALE_KEY_SECONDS = 3600.0
KeyKind = Literal["inference", "management"]
LimitReset = Literal["daily", "weekly", "monthly"]
DEFAULT_ACCOUNT = "default"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def label_for(secret: str) -> str:
    return f"{secret[: len(KEY_PREFIX) + 3]}...{secret[-3:]}"


def new_account_id() -> str:
    return uuid.uuid4().hex


def _utc(moment: dt.datetime) -> dt.datetime:
    """Timestamps without a zone (SQLite's datetime('now') writes those) are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    hash: str
    account_id: str
    kind: KeyKind
    name: str
    label: str
    limit: Decimal | None
    limit_reset: str | None
    include_byok_in_limit: bool
    disabled: bool
    expires_at: dt.datetime | None
    created_at: str
    updated_at: str | None

    @property
    def limit_pico(self) -> int | None:
        return to_pico(self.limit) if self.limit is not None else None

    @classmethod
    def from_row(cls, row: Row) -> KeyRecord:
        expires = row["expires_at"]
        limit = row["credit_limit"]
        return cls(
            hash=row["hash"],
            account_id=row["account_id"],
            kind=row["kind"],
            name=row["name"],
            label=row["label"],
            limit=from_pico(int(limit)) if limit is not None else None,
            limit_reset=row["limit_reset"],
            include_byok_in_limit=bool(row["include_byok_in_limit"]),
            disabled=bool(row["disabled"]),
            expires_at=_utc(dt.datetime.fromisoformat(expires)) if expires else None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    enforce_balance: bool
    total_credits: int  # picodollars
    total_usage: int

    @classmethod
    def from_row(cls, row: Row) -> Account:
        return cls(
            id=row["id"],
            name=row["name"],
            enforce_balance=bool(row["enforce_balance"]),
            total_credits=int(row["total_credits"]),
            total_usage=int(row["total_usage"]),
        )


class KeyStore:
    def __init__(self, db: Database, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        # key hash -> (valid until, record, read at)
        self._cache: dict[str, tuple[float, KeyRecord | None, float]] = {}

    # --- accounts --------------------------------------------------------------------------

    async def ensure_account(
        self,
        account_id: str = DEFAULT_ACCOUNT,
        name: str = "Default",
        enforce_balance: bool = False,
    ) -> Account:
        await self._db.execute(
            "INSERT INTO accounts (id, name, enforce_balance, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            account_id,
            name,
            int(enforce_balance),
            now_iso(),
        )
        account = await self.account(account_id)
        assert account is not None
        return account

    async def account(self, account_id: str) -> Account | None:
        row = await self._db.fetchone("SELECT * FROM accounts WHERE id = ?", account_id)
        return Account.from_row(row) if row else None

    async def accounts(self) -> list[Account]:
        rows = await self._db.fetchall("SELECT * FROM accounts ORDER BY created_at, id")
        return [Account.from_row(r) for r in rows]

    async def add_credits(
        self, account_id: str, amount: Decimal, note: str | None = None
    ) -> Account:
        pico = to_pico(amount)
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE accounts SET total_credits = total_credits + ? WHERE id = ?",
                pico,
                account_id,
            )
            if not changed:
                raise NotFound(f"Account {account_id} not found")
            await tx.execute(
                "INSERT INTO credit_grants (account_id, amount, note, created_at)"
                " VALUES (?, ?, ?, ?)",
                account_id,
                pico,
                note,
                now_iso(),
            )
        account = await self.account(account_id)
        assert account is not None
        return account

    # --- keys ------------------------------------------------------------------------------

    async def create_key(
        self,
        *,
        name: str,
        account_id: str = DEFAULT_ACCOUNT,
        kind: KeyKind = "inference",
        limit: Decimal | None = None,
        limit_reset: str | None = None,
        include_byok_in_limit: bool = False,
        expires_at: dt.datetime | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; return the secret (shown once) and its record."""
        secret = new_secret()
        key_hash = hash_key(secret)
        await self._db.execute(
            "INSERT INTO api_keys (hash, account_id, kind, name, label, credit_limit,"
            " limit_reset, include_byok_in_limit, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            key_hash,
            account_id,
            kind,
            name,
            label_for(secret),
            to_pico(limit) if limit is not None else None,
            limit_reset,
            int(include_byok_in_limit),
            _utc(expires_at).isoformat(timespec="seconds") if expires_at else None,
            now_iso(),
        )
        record = await self.get(key_hash)
        assert record is not None
        return secret, record

    async def get(self, key_hash: str) -> KeyRecord | None:
        row = await self._db.fetchone("SELECT * FROM api_keys WHERE hash = ?", key_hash)
        return KeyRecord.from_row(row) if row else None

    async def usage_row(self, key_hash: str) -> Row | None:
        return await self._db.fetchone(
            "SELECT usage_total, usage_day, usage_daily, usage_week, usage_weekly, usage_month,"
            " usage_monthly FROM api_keys WHERE hash = ?",
            key_hash,
        )

    async def count_keys(self) -> int:
        row = await self._db.fetchone("SELECT count(*) AS n FROM api_keys")
        return int(row["n"]) if row else 0

    async def list_keys(
        self,
        account_id: str | None = None,
        *,
        include_disabled: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> list[KeyRecord]:
        sql = "SELECT * FROM api_keys WHERE 1 = 1"
        params: list[Any] = []
        if account_id is not None:
            sql += " AND account_id = ?"
            params.append(account_id)
        if not include_disabled:
            sql += " AND disabled = 0"
        sql += " ORDER BY created_at, hash LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [KeyRecord.from_row(r) for r in await self._db.fetchall(sql, *params)]

    async def update_key(self, key_hash: str, changes: dict[str, Any]) -> KeyRecord:
        """Apply ``changes`` (column -> value, already validated) and return the new record."""
        columns = {
            "name": "name",
            "disabled": "disabled",
            "limit": "credit_limit",
            "limit_reset": "limit_reset",
            "include_byok_in_limit": "include_byok_in_limit",
            "expires_at": "expires_at",
        }
        sets, params = [], []
        for field, value in changes.items():
            sets.append(f"{columns[field]} = ?")
            if field == "limit":
                value = to_pico(value) if value is not None else None
            elif field == "expires_at" and value is not None:
                value = _utc(value).isoformat(timespec="seconds")  # a TEXT column everywhere
            elif isinstance(value, bool):
                value = int(value)
            params.append(value)
        sets.append("updated_at = ?")
        params.append(now_iso())
        changed = await self._db.execute(
            f"UPDATE api_keys SET {', '.join(sets)} WHERE hash = ?", *params, key_hash
        )
        if not changed:
            raise NotFound(f"Key {key_hash} not found")
        self._cache.pop(key_hash, None)
        record = await self.get(key_hash)
        assert record is not None
        return record

    async def delete_key(self, key_hash: str) -> None:
        if not await self._db.execute("DELETE FROM api_keys WHERE hash = ?", key_hash):
            raise NotFound(f"Key {key_hash} not found")
        self._cache.pop(key_hash, None)

    # --- the request path ------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> KeyRecord:
        if not authorization:
            raise Unauthorized("Missing Authorization header; send 'Authorization: Bearer <key>'")
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise Unauthorized("Authorization header must be 'Bearer <key>'")
        record = await self._lookup(hash_key(secret))
        if record is None:
            raise Unauthorized("Invalid API key")
        if record.disabled:
            raise Unauthorized("This API key is disabled")
        if record.expires_at is not None and record.expires_at <= dt.datetime.now(dt.UTC):
            raise Unauthorized("This API key has expired")
        return record

    async def inference_key(
        self, authorization: str | None, api_key: str | None = None
    ) -> KeyRecord:
        """``api_key`` is a bare key from an ``x-api-key`` header (Anthropic's clients send
        that), used when there is no Authorization header."""
        if not authorization and api_key and api_key.strip():
            authorization = f"Bearer {api_key.strip()}"
        key = await self.authenticate(authorization)
        if key.kind != "inference":
            raise Forbidden("Management keys cannot call inference endpoints; use an inference key")
        return key

    async def management_key(self, authorization: str | None) -> KeyRecord:
        key = await self.authenticate(authorization)
        if key.kind != "management":
            raise Forbidden("Only management keys can perform this operation")
        return key

    async def _lookup(self, key_hash: str) -> KeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            record = await self.get(key_hash)
        except StorageError:
            if cached is None or cached[2] + STALE_KEY_SECONDS < now:
                raise  # a key we have not seen lately: 503, never a guess
            # The database is away: keep serving keys we know, as they were, and do not
            # ask again on every request while it stays away.
            self._cache[key_hash] = (now + self._cache_seconds, cached[1], cached[2])
            return cached[1]
        if len(self._cache) > 10_000:  # unknown keys must not grow the cache without bound
            self._cache.clear()
        self._cache[key_hash] = (now + self._cache_seconds, record, now)
        return record
