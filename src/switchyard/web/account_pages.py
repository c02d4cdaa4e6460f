"""/activity and /keys for a signed-in user, and signing in and out (see session.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchyard.accounting import views as accounting_views
from switchyard.accounting.money import from_pico
from switchyard.errors import SwitchyardError
from switchyard.server.responses import read_body
from switchyard.server.state import state_of
from switchyard.stats import usage
from switchyard.stats.periods import days_between, today
from switchyard.web.common import error_page, page, unix_day, web_state
from switchyard.web.session import Sessions

SECURE_PAGES = ("/activity", "/keys")
FORM_LIMIT = 16 * 1024
ACTIVITY_DAYS = 30


async def activity_page(request: Request) -> Response:
    state = state_of(request)
    key = await web_state(request).sessions.current(request)
    if key is None:
        return await _login(request, "/activity")
    end = today()
    first = end - dt.timedelta(days=ACTIVITY_DAYS - 1)
    rows = await usage.account_activity(state.db, key.account_id, first, end)
    days = days_between(first, end)
    tokens = dict.fromkeys(days, 0)
    spend = dict.fromkeys(days, Decimal(0))
    for row in rows:
        tokens[row.day] += row.prompt_tokens + row.completion_tokens
        spend[row.day] += from_pico(row.usage)
    chart = {
        "kind": "bars",
        "x": [unix_day(d) for d in days],
        "series": [{"label": "Tokens", "values": [tokens[d] for d in days]}],
    }
    return await page(
        request,
        "activity.html",
        {
            "title": "Activity",
            "signed_in": key,
            "rows": rows,
            "chart": chart,
            "total_tokens": sum(tokens.values()),
            "total_spend": sum(spend.values(), Decimal(0)),
            "requests": sum(r.requests for r in rows),
            "from_pico": from_pico,
        },
    )


async def keys_page(request: Request) -> Response:
    state = state_of(request)
    key = await web_state(request).sessions.current(request)
    if key is None:
        return await _login(request, "/keys")
    records = await state.keys.list_keys(key.account_id, include_disabled=True)
    data = [await accounting_views.key_data(k, state.ledger) for k in records]
    return await page(request, "keys.html", {"title": "API keys", "signed_in": key, "keys": data})


async def _login(
    request: Request, next_page: str, error: str | None = None, status_code: int = 200
) -> Response:
    return await page(
        request,
        "login.html",
        {"title": "Sign in", "next_page": next_page, "error": error},
        status_code,
    )


def _same_origin(request: Request) -> bool:
    """Forms post from our own pages; a browser names the page's origin on every POST."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser (or a very old one): no cookie is at stake for it
    return origin == f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the only kind these pages post); other bodies read as empty."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request, FORM_LIMIT)
    if content_type != "application/x-www-form-urlencoded":
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


async def login(request: Request) -> Response:
    state = state_of(request)
    form = await _form(request)
    next_page = form.get("next") or "/activity"
    if next_page not in SECURE_PAGES:
        next_page = "/activity"
    if not _same_origin(request):
        return await _login(request, next_page, "This form must be sent from this site.", 403)
    secret = form.get("key", "").strip()
    if not secret:
        return await _login(request, next_page, "Paste a management key into the `key` field.", 400)
    try:
        key = await state.keys.management_key(f"Bearer {secret}")
    except SwitchyardError as exc:
        return await _login(request, next_page, exc.message, exc.status)
    sessions = web_state(request).sessions
    response = RedirectResponse(next_page, status_code=303)
    sessions.set_cookie(response, request, sessions.issue(key))
    return response


async def logout(request: Request) -> Response:
    if not _same_origin(request):
        return await error_page(request, 403, "Forbidden", "This form must be sent from this site.")
    response = RedirectResponse("/models", status_code=303)
    Sessions.clear_cookie(response)
    return response
