"""/providers and /rankings: who serves what, and which models and apps use the most."""

from __future__ import annotations

from typing import get_args

from starlette.requests import Request
from starlette.responses import Response

from switchyard.server.state import state_of
from switchyard.stats import live, usage
from switchyard.stats.periods import Period, days_between, first_day, today
from switchyard.web.common import error_page, page, unix_day


async def providers_page(request: Request) -> Response:
    state = state_of(request)
    rows = []
    for provider in state.catalog.providers.values():
        served = [
            e
            for endpoints in state.catalog.endpoints.values()
            for e in endpoints
            if e.provider == provider.slug
        ]
        health = live.snapshots(state.chat.health, served)
        rows.append(
            {
                "provider": provider,
                "available": provider.slug in state.view.available,
                "models": sorted({e.model for e in served}),
                "uptime": live.average_uptime(health.values()),
                "speed": live.model_speed(health.values()),
            }
        )
    return await page(request, "providers.html", {"title": "Providers", "rows": rows})


async def rankings_page(request: Request) -> Response:
    state = state_of(request)
    period = request.query_params.get("period", "week")
    if period not in get_args(Period):
        return await error_page(
            request, 400, "Invalid period", "`period` must be one of day, week or month."
        )
    end = today()
    first = first_day(period, end)  # type: ignore[arg-type]
    models = await usage.tokens_by_model(state.db, first, end)
    apps = await usage.top_apps(state.db, first, end)
    top = [m.model for m in models[:5]]
    daily = await usage.daily_tokens(state.db, top, first, end)
    days = days_between(first, end)
    chart = {
        "kind": "bars" if len(top) == 1 else "lines",
        "x": [unix_day(d) for d in days],
        "series": [{"label": m, "values": daily[m]} for m in top],
    }
    return await page(
        request,
        "rankings.html",
        {
            "title": "Rankings",
            "period": period,
            "periods": ["day", "week", "month"],
            "models": models,
            "apps": apps,
            "names": {m: s.name for m, s in state.catalog.models.items()},
            "chart": chart,
        },
    )
