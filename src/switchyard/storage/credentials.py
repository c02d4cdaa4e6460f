"""Provider API keys kept in the database, encrypted with the operator's master key.

The master key comes from ``SWITCHYARD_MASTER_KEY`` (32 random bytes, base64) and never
touches the database. Each key is sealed with AES-256-GCM under a fresh 96-bit nonce, with
the provider slug as associated data, so a sealed key copied onto another provider's row
fails to open instead of being sent to the wrong host. Opening with the wrong master key
fails authentication, which the server reports as a start-up error naming the provider.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from switchyard.catalog import Catalog
from switchyard.settings import ProviderConfig, Settings
from switchyard.storage.base import Queries

log = logging.getLogger("switchyard.credentials")

MASTER_KEY_ENV = "SWITCHYARD_MASTER_KEY"
_VERSION = "v1:"
_NONCE_BYTES = 12


class CredentialError(Exception):
    """A master key that is malformed or does not open the stored credentials."""


def new_master_key() -> str:
    """A fresh master key in the form ``SWITCHYARD_MASTER_KEY`` takes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def master_key_from(environ: Mapping[str, str]) -> bytes | None:
    """The master key from the environment; None when unset, CredentialError if malformed."""
    text = environ.get(MASTER_KEY_ENV, "").strip()
    if not text:
        return None
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise CredentialError(
            f"{MASTER_KEY_ENV} must be 32 random bytes in base64 (44 characters); "
            "make one with `switchyard providers new-master-key`"
        )
    return key


def _aad(slug: str) -> bytes:
    return b"switchyard provider credential:" + slug.encode("utf-8")


def seal(master: bytes, slug: str, api_key: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(master).encrypt(nonce, api_key.encode("utf-8"), _aad(slug))
    return _VERSION + base64.b64encode(nonce + sealed).decode("ascii")


def unseal(master: bytes, slug: str, sealed: str) -> str:
    if not sealed.startswith(_VERSION):
        raise CredentialError(f"the stored key for provider {slug!r} is in an unknown format")
    try:
        raw = base64.b64decode(sealed.removeprefix(_VERSION), validate=True)
        plain = AESGCM(master).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(slug))
    except (InvalidTag, binascii.Error, ValueError):
        raise CredentialError(
            f"{MASTER_KEY_ENV} does not open the stored key for provider {slug!r}: "
            "the master key is not the one the key was stored with"
        ) from None
    return plain.decode("utf-8")


class CredentialStore:
    def __init__(self, db: Queries) -> None:
        self._db = db

    async def put(self, slug: str, sealed: str) -> None:
        await self._db.execute(
            "INSERT INTO provider_credentials (slug, sealed, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (slug) DO UPDATE SET sealed = excluded.sealed, "
            "updated_at = excluded.updated_at",
            slug,
            sealed,
            datetime.now(UTC).isoformat(),
        )

    async def sealed(self) -> dict[str, str]:
        rows = await self._db.fetchall("SELECT slug, sealed FROM provider_credentials")
        return {str(row["slug"]): str(row["sealed"]) for row in rows}

    async def unsealed(self, master: bytes) -> dict[str, str]:
        return {slug: unseal(master, slug, s) for slug, s in (await self.sealed()).items()}


async def with_stored_keys(
    settings: Settings, catalog: Catalog, db: Queries, environ: Mapping[str, str]
) -> Settings:
    """``settings`` with each stored provider key filled in where config and environment
    give none. Every stored key is opened first, so a wrong master key stops the start."""
    stored = await CredentialStore(db).sealed()
    if not stored:
        return settings
    master = master_key_from(environ)
    if master is None:
        log.warning(
            "%d provider key(s) stored in the database are not used: %s is not set (%s)",
            len(stored),
            MASTER_KEY_ENV,
            ", ".join(sorted(stored)),
        )
        return settings
    opened = {slug: unseal(master, slug, sealed) for slug, sealed in stored.items()}
    providers = dict(settings.providers)
    for slug, api_key in opened.items():
        spec = catalog.providers.get(slug)
        if spec is None:
            log.warning("a key is stored for provider %r, which is not in the catalog", slug)
            continue
        config = providers.get(slug) or ProviderConfig()
        if config.api_key or (spec.api_key_env and environ.get(spec.api_key_env)):
            continue  # the config file, then the environment, win over the database
        providers[slug] = msgspec.structs.replace(config, api_key=api_key)
        log.info("provider %s: using the key stored in the database", slug)
    return msgspec.structs.replace(settings, providers=providers)
