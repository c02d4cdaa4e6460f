"""Signing in to the pages with a management key, without keeping the key.

The user pastes a management key into a form once. The server checks it like the API does,
then sets a cookie holding only the key's *hash* and an expiry, signed with HMAC-SHA256
under a secret kept in the data directory. The cookie is HttpOnly (page scripts cannot
read it, so an injected script cannot steal it), SameSite=Strict (no other site can make
the browser send it, which is the pages' CSRF defence) and Secure behind HTTPS. Each page
looks the key up again by its hash, so disabling or deleting the key ends its sessions at
once. The secret itself is never stored: not in the cookie, not in browser storage, not in
a log; sessionStorage was rejected because any script on the page could read it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from switchyard.accounting.keys import KeyRecord, KeyStore

COOKIE = "switchyard_session"
LIFETIME_SECONDS = 12 * 3600


def load_secret(data_dir: Path) -> bytes:
    """The signing secret, created on first use (0600), shared by replicas on one data dir."""
    path = data_dir / "web-session.secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_bytes()
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret


class Sessions:
    def __init__(self, secret: bytes, keys: KeyStore) -> None:
        self._secret = secret
        self._keys = keys

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, key: KeyRecord, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + LIFETIME_SECONDS)
        payload = f"{key.hash}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    async def current(self, request: Request, now: float | None = None) -> KeyRecord | None:
        """The signed-in management key, or None (no cookie, forged, expired, revoked)."""
        token = request.cookies.get(COOKIE)
        if not token or token.count(".") != 2:
            return None
        key_hash, expires, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{key_hash}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        key = await self._keys.get(key_hash)
        if key is None or key.kind != "management" or key.disabled:
            return None
        if key.expires_at is not None and key.expires_at <= dt.datetime.now(dt.UTC):
            return None
        return key

    def set_cookie(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=LIFETIME_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear_cookie(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
