"""/models: the catalog, searched, filtered and sorted; measured speed and weekly tokens."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchyard.errors import InvalidRequest, SwitchyardError
from switchyard.server.state import AppState, state_of
from switchyard.stats import live, usage
from switchyard.stats.periods import first_day, today
from switchyard.web.common import page

SORTS = {
    "": "Default",
    "newest": "Newest",
    "pricing-low-to-high": "Price: low to high",
    "pricing-high-to-low": "Price: high to low",
    "context-high-to-low": "Context: longest",
    "throughput-high-to-low": "Throughput: fastest",
    "latency-low-to-high": "Latency: lowest",
}
MODALITIES = ["text", "image", "file", "audio", "video"]
CONTEXT_CHOICES = [(0, "Any"), (4_000, "4K+"), (32_000, "32K+"), (128_000, "128K+")]
PRICE_CHOICES = [("", "Any"), ("0", "Free"), ("1", "≤ $1/M"), ("5", "≤ $5/M"), ("10", "≤ $10/M")]


async def home(request: Request) -> Response:
    return RedirectResponse("/models", status_code=307)


async def models_page(request: Request) -> Response:
    state = state_of(request)
    q = request.query_params
    form = {
        name: q.get(name, "").strip()
        for name in ("q", "modality", "context", "max_price", "provider", "parameter", "sort")
    }
    query: dict[str, str] = {"q": form["q"]}
    if form["modality"]:
        query["input_modalities"] = form["modality"]
    if form["context"] and form["context"] != "0":
        query["context"] = form["context"]
    if form["max_price"]:
        query["max_price"] = form["max_price"]
    if form["provider"]:
        query["providers"] = form["provider"]
    if form["parameter"]:
        query["supported_parameters"] = form["parameter"]
    sort = form["sort"]
    if sort not in SORTS:
        return await _invalid(request, state, form, f"Unknown sort {sort!r}", "sort")
    if form["modality"] and form["modality"] not in MODALITIES:
        return await _invalid(
            request, state, form, f"Unknown modality {form['modality']!r}", "modality"
        )
    query["sort"] = sort
    try:
        models = state.view.list_models(query)
    except InvalidRequest as exc:
        return await _invalid(request, state, form, exc.message, _field(exc))
    speed = live.model_speeds(models, state.chat.health, state.view.endpoints)
    if sort in live.SPEED_SORTS:
        models = live.sort_by_speed(models, sort, speed)
    end = today()
    weekly = {
        m.model: m.tokens
        for m in await usage.tokens_by_model(db=state.db, first=first_day("week", end), last=end)
    }
    return await page(
        request,
        "models.html",
        _models_context(state, form)
        | {
            "models": models,
            "speed": speed,
            "weekly": weekly,
            "providers_of": {
                m.id: [state.catalog.providers[e.provider].name for e in state.view.endpoints(m.id)]
                for m in models
            },
        },
    )


def _field(exc: SwitchyardError) -> str:
    metadata = exc.metadata or {}
    field = metadata.get("field", "")
    return str(field)


def _models_context(state: AppState, form: dict[str, str]) -> dict[str, Any]:
    parameters: set[str] = set()
    for model in state.view.models.values():
        parameters.update(model.supported_parameters)
    return {
        "title": "Models",
        "form": form,
        "sorts": SORTS,
        "modalities": MODALITIES,
        "context_choices": CONTEXT_CHOICES,
        "price_choices": PRICE_CHOICES,
        "providers": [
            p for p in state.catalog.providers.values() if p.slug in state.view.available
        ],
        "parameters": sorted(parameters),
        "error": None,
        "error_field": None,
    }


async def _invalid(
    request: Request, state: AppState, form: dict[str, str], message: str, field: str
) -> Response:
    context = _models_context(state, form) | {
        "models": [],
        "speed": {},
        "weekly": {},
        "providers_of": {},
        "error": message,
        "error_field": field,
    }
    return await page(request, "models.html", context, 400)
