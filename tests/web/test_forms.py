"""What the pages do with hostile or malformed input, over plain HTTP (no browser needed)."""

from __future__ import annotations

import httpx

from tests.web.conftest import Site


def test_reflected_input_is_escaped(site: Site) -> None:
    attack = '"><script>alert(1)</script>'
    response = httpx.get(f"{site.url}/models", params={"q": attack})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_login_from_another_site_is_refused(site: Site) -> None:
    response = httpx.post(
        f"{site.url}/login",
        data={"key": site.server.management_key},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert "must be sent from this site" in response.text


def test_login_names_the_missing_field(site: Site) -> None:
    response = httpx.post(f"{site.url}/login", json={"key": site.server.management_key})
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    assert "`key` field" in response.text
    too_big = httpx.post(
        f"{site.url}/login",
        content=b"key=" + b"x" * 20_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_big.status_code == 413


def test_a_forged_session_cookie_is_not_signed_in(site: Site) -> None:
    signed_in = httpx.post(
        f"{site.url}/login", data={"key": site.server.management_key, "next": "/keys"}
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/keys"
    token = signed_in.cookies["switchyard_session"]
    key_hash, expires, signature = token.split(".")
    good = httpx.get(f"{site.url}/keys", cookies={"switchyard_session": token})
    assert "<h1>API keys</h1>" in good.text
    forged = f"{key_hash}.{int(expires) + 86400}.{signature}"
    bad = httpx.get(f"{site.url}/keys", cookies={"switchyard_session": forged})
    assert "<h1>Sign in</h1>" in bad.text


def test_next_page_after_login_stays_on_this_site(site: Site) -> None:
    response = httpx.post(
        f"{site.url}/login",
        data={"key": site.server.management_key, "next": "https://evil.example/"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/activity"
