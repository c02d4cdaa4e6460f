"""Page sessions: a signed reference to a management key, never the key itself."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.requests import Request

from switchyard.accounting.keys import KeyStore
from switchyard.web.session import COOKIE, LIFETIME_SECONDS, Sessions, load_secret


def request_with(token: str | None) -> Request:
    headers = [(b"cookie", f"{COOKIE}={token}".encode())] if token else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


async def test_a_session_names_the_key_by_hash_and_resolves_to_it(
    keys: KeyStore, tmp_path: Path
) -> None:
    secret, manager = await keys.create_key(name="admin", kind="management")
    sessions = Sessions(load_secret(tmp_path), keys)
    token = sessions.issue(manager)
    assert secret not in token and manager.hash in token
    current = await sessions.current(request_with(token))
    assert current is not None and current.hash == manager.hash


async def test_forged_expired_and_foreign_tokens_are_refused(
    keys: KeyStore, tmp_path: Path
) -> None:
    _, manager = await keys.create_key(name="admin", kind="management")
    sessions = Sessions(load_secret(tmp_path), keys)
    token = sessions.issue(manager)
    key_hash, expires, signature = token.split(".")
    assert await sessions.current(request_with(None)) is None
    assert await sessions.current(request_with("garbage")) is None
    forged_expiry = f"{key_hash}.{int(expires) + 10_000}.{signature}"
    assert await sessions.current(request_with(forged_expiry)) is None
    other = Sessions(b"another secret", keys)
    assert await other.current(request_with(token)) is None
    later = time.time() + LIFETIME_SECONDS + 1
    assert await sessions.current(request_with(token), now=later) is None


async def test_disabling_the_key_ends_its_sessions(keys: KeyStore, tmp_path: Path) -> None:
    _, manager = await keys.create_key(name="admin", kind="management")
    sessions = Sessions(load_secret(tmp_path), keys)
    token = sessions.issue(manager)
    await keys.update_key(manager.hash, {"disabled": True})
    assert await sessions.current(request_with(token)) is None


async def test_an_inference_key_cannot_hold_a_session(keys: KeyStore, tmp_path: Path) -> None:
    _, inference = await keys.create_key(name="app")
    sessions = Sessions(load_secret(tmp_path), keys)
    assert await sessions.current(request_with(sessions.issue(inference))) is None


def test_the_signing_secret_is_created_once_and_private(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert load_secret(tmp_path) == first and len(first) == 32
    assert (tmp_path / "web-session.secret").stat().st_mode & 0o777 == 0o600
