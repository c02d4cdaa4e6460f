"""/{author}/{slug}: one model, with the tabs of the seeds (Overview ... API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from switchyard.routing.health import EndpointHealth
from switchyard.server.state import state_of
from switchyard.stats import live, usage
from switchyard.stats.health_history import health_history
from switchyard.stats.periods import days_between, first_day, today
from switchyard.web.common import error_page, page, unix, unix_day
from switchyard.web.parameters import parameters_table
from switchyard.web.samples import samples

TABS = ["overview", "providers", "performance", "pricing", "apps", "activity", "uptime", "api"]
ACTIVITY_DAYS = 30
HISTORY_HOURS = 24


@dataclass(frozen=True)
class EndpointRow:
    key: str
    provider: str
    provider_slug: str
    pricing: Any
    context_length: int
    max_completion_tokens: int | None
    quantization: str
    health: EndpointHealth


async def model_page(request: Request) -> Response:
    state = state_of(request)
    model_id = f"{request.path_params['author']}/{request.path_params['slug']}"
    spec = state.catalog.model(model_id)
    if spec is None:
        return await error_page(
            request, 404, "Model not found", f"There is no model {model_id} in this catalog."
        )
    out = state.view.models[model_id]
    endpoints = state.view.endpoints(model_id) or state.catalog.endpoints_for(model_id)
    health = live.snapshots(state.chat.health, endpoints)
    rows = [
        EndpointRow(
            key=e.key,
            provider=state.catalog.providers[e.provider].name,
            provider_slug=e.provider,
            pricing=e.pricing,
            context_length=e.context_length,
            max_completion_tokens=e.max_completion_tokens,
            quantization=e.quantization,
            health=health[e.key],
        )
        for e in endpoints
    ]
    end = today()
    first = end - dt.timedelta(days=ACTIVITY_DAYS - 1)
    daily = await usage.daily_tokens(state.db, [model_id], first, end)
    weekly_tokens = sum(daily[model_id][-7:])
    week = first_day("week", end)
    apps = await usage.top_apps(state.db, week, end, model=model_id)
    shares = await usage.version_shares(state.db, model_id, list(state.catalog.models), first, end)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=HISTORY_HOURS)
    history = await health_history(state.db, model_id, since)
    tags = []
    if len(spec.architecture.input_modalities) > 1:
        tags.append("multimodal")
    if "tools" in out.supported_parameters:
        tags.append("tools")
    if "response_format" in out.supported_parameters:
        tags.append("structured-outputs")
    base_url = f"{request.url.scheme}://{request.url.netloc}"
    return await page(
        request,
        "model.html",
        {
            "title": spec.name,
            "model": out,
            "spec": spec,
            "tags": tags,
            "tabs": TABS,
            "endpoints": rows,
            "weekly_tokens": weekly_tokens,
            "apps": apps,
            "shares": shares,
            "history": history,
            "parameters": parameters_table(out.supported_parameters, dict(spec.default_parameters)),
            "samples": samples(base_url, model_id),
            "charts": _model_charts(model_id, first, end, daily, shares, history),
        },
    )


def _model_charts(
    model_id: str,
    first: dt.date,
    end: dt.date,
    daily: dict[str, list[int]],
    shares: list[tuple[str, int, float]],
    history: dict[tuple[str, str], list[Any]],
) -> dict[str, Any]:
    """Chart data for the page's JSON block: x values as Unix seconds, one series each."""
    days = days_between(first, end)
    day_x = [unix_day(d) for d in days]
    times = sorted({p.at for points in history.values() for p in points})
    time_x = [unix(dt.datetime.fromisoformat(t)) for t in times]

    def over_time(attr: str) -> list[dict[str, Any]]:
        series = []
        for (_, provider), points in history.items():
            by_time = {p.at: getattr(p, attr) for p in points}
            series.append({"label": provider, "values": [by_time.get(t) for t in times]})
        return series

    return {
        "tokens": {
            "kind": "bars",
            "x": day_x,
            "series": [{"label": "Tokens", "values": daily[model_id]}],
        },
        "latency": {"kind": "lines", "x": time_x, "unit": "s", "series": over_time("latency_p50")},
        "throughput": {
            "kind": "lines",
            "x": time_x,
            "unit": "tok/s",
            "series": over_time("throughput_p50"),
        },
        "uptime": {"kind": "lines", "x": time_x, "unit": "%", "series": over_time("uptime")},
        "shares": [{"model": m, "tokens": t, "percent": p} for m, t, p in shares],
    }
