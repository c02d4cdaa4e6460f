"""What every page handler shares: per-process web state and rendering with the session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from switchyard.server.state import state_of
from switchyard.web.render import render
from switchyard.web.session import Sessions, load_secret


@dataclass
class WebState:
    sessions: Sessions


def web_state(request: Request) -> WebState:
    """Built on first use per process: the session secret lives in the data directory."""
    app_state = request.app.state
    web: WebState | None = getattr(app_state, "switchyard_web", None)
    if web is None:
        state = state_of(request)
        web = WebState(Sessions(load_secret(state.settings.data_path), state.keys))
        app_state.switchyard_web = web
    return web


async def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    if "signed_in" not in context:  # every page offers "sign out" to a signed-in user
        context["signed_in"] = await web_state(request).sessions.current(request)
    return render(request, template, context, status_code)


async def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return await page(request, "error.html", {"title": title, "message": message}, status)


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def unix_day(day: str) -> int:
    """A chart's x value for an ISO day: midnight UTC in Unix seconds."""
    return unix(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
