"""API keys: generated once, shown once, stored as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is the right tool (a slow password hash
would only add latency to every request). Lookups on the request path are served from a
short-lived in-memory cache so that authentication costs no database round trip; the
cache's lifetime bounds how long a disabled key keeps working on this process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from switchyard.errors import Unauthorized
from switchyard.storage.sqlite import SQLiteDatabase

KEY_PREFIX = "sk-sy-v1-"
KeyKind = Literal["inference", "management"]
DEFAULT_ACCOUNT = "default"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def label_for(secret: str) -> str:
    return f"{secret[: len(KEY_PREFIX) + 3]}...{secret[-3:]}"


def _utc(moment: dt.datetime) -> dt.datetime:
    """Timestamps without a zone (SQLite's datetime('now') writes those) are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _now() -> str:
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
    disabled: bool
    expires_at: dt.datetime | None
    created_at: str

    def usable(self, now: dt.datetime) -> bool:
        return not self.disabled and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> KeyRecord:
        expires = row["expires_at"]
        return cls(
            hash=row["hash"],
            account_id=row["account_id"],
            kind=row["kind"],
            name=row["name"],
            label=row["label"],
            limit=Decimal(row["credit_limit"]) if row["credit_limit"] is not None else None,
            limit_reset=row["limit_reset"],
            disabled=bool(row["disabled"]),
            expires_at=_utc(dt.datetime.fromisoformat(expires)) if expires else None,
            created_at=row["created_at"],
        )


class KeyStore:
    def __init__(self, db: SQLiteDatabase, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    # --- writes (CLI and management API) ---------------------------------------------------

    def ensure_account(self, account_id: str = DEFAULT_ACCOUNT, name: str = "Default") -> str:
        def run(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT OR IGNORE INTO accounts (id, name, created_at) VALUES (?, ?, ?)",
                (account_id, name, _now()),
            )
            return account_id

        return self._db.run_sync(run)

    def create_key(
        self,
        *,
        name: str,
        account_id: str = DEFAULT_ACCOUNT,
        kind: KeyKind = "inference",
        limit: Decimal | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; return the secret (shown once) and its record."""
        secret = new_secret()
        key_hash = hash_key(secret)

        def run(conn: sqlite3.Connection) -> KeyRecord:
            conn.execute(
                "INSERT INTO api_keys (hash, account_id, kind, name, label, credit_limit,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key_hash,
                    account_id,
                    kind,
                    name,
                    label_for(secret),
                    str(limit) if limit is not None else None,
                    _now(),
                ),
            )
            row = conn.execute("SELECT * FROM api_keys WHERE hash = ?", (key_hash,)).fetchone()
            return KeyRecord.from_row(row)

        return secret, self._db.run_sync(run)

    def count_keys(self) -> int:
        return int(
            self._db.run_sync(lambda c: c.execute("SELECT count(*) FROM api_keys").fetchone()[0])
        )

    def list_keys(self) -> list[KeyRecord]:
        rows = self._db.run_sync(
            lambda c: c.execute("SELECT * FROM api_keys ORDER BY created_at").fetchall()
        )
        return [KeyRecord.from_row(r) for r in rows]

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

    async def _lookup(self, key_hash: str) -> KeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]

        def run(conn: sqlite3.Connection) -> KeyRecord | None:
            row = conn.execute("SELECT * FROM api_keys WHERE hash = ?", (key_hash,)).fetchone()
            return KeyRecord.from_row(row) if row is not None else None

        record = await self._db.run(run)
        if len(self._cache) > 10_000:  # unknown keys must not grow the cache without bound
            self._cache.clear()
        self._cache[key_hash] = (now + self._cache_seconds, record)
        return record


def new_account_id() -> str:
    return uuid.uuid4().hex
