"""The catalog over HTTP: /models (and its count and per-user list), one model, its
endpoints with live health, and the providers."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from switchyard.errors import InvalidRequest, NotFound
from switchyard.server.responses import JSONBytes
from switchyard.server.state import state_of
from switchyard.stats import live, usage
from switchyard.stats.periods import first_day, today
from switchyard.wire.codec import encode
from switchyard.wire.models import (
    EndpointsEnvelope,
    ModelEnvelope,
    ModelOut,
    ModelsCount,
    ModelsPage,
    ProvidersEnvelope,
)

# Both by this week's tokens: the use this server has recorded is its measure of popularity.
POPULARITY_SORTS = frozenset({"most-popular", "top-weekly"})
# As OpenRouter: a page of 500 unless asked otherwise, 1,000 at most.
DEFAULT_PAGE = 500
MAX_PAGE = 1000


async def list_models(request: Request) -> Response:
    models = await _listed(request)
    return JSONBytes(encode(_page(request, models)))


async def list_user_models(request: Request) -> Response:
    """OpenRouter filters this list by the account's provider preferences and guardrails;
    Switchyard accounts have none, so it is /models for any valid key."""
    state = state_of(request)
    await state.keys.authenticate(request.headers.get("authorization"))
    models = await _listed(request)
    return JSONBytes(encode(_page(request, models)))


async def _listed(request: Request) -> list[ModelOut]:
    """/models' filters and sorts, including the sorts by what this server measured."""
    state = state_of(request)
    models = state.view.list_models(request.query_params)
    sort = request.query_params.get("sort", "")
    if sort in live.SPEED_SORTS:
        speeds = live.model_speeds(models, state.chat.health, state.view.endpoints)
        return live.sort_by_speed(models, sort, speeds)
    if sort in POPULARITY_SORTS:
        end = today()
        ranked = await usage.tokens_by_model(state.db, first_day("week", end), end)
        tokens = {row.model: row.tokens for row in ranked}
        return sorted(models, key=lambda m: -tokens.get(m.id, 0))
    return models


async def count_models(request: Request) -> Response:
    query = request.query_params
    modalities = (
        {"output_modalities": query["output_modalities"]} if "output_modalities" in query else {}
    )
    count = len(state_of(request).view.list_models(modalities))
    return JSONBytes(encode(ModelsCount(data={"count": count})))


def _page(request: Request, models: list[ModelOut]) -> ModelsPage:
    """The whole list when neither ``offset`` nor ``limit`` is given, else one page with a
    link to the next (keeping the request's filters)."""
    query = request.query_params
    if not query.get("offset") and not query.get("limit"):
        return ModelsPage(data=models, total_count=len(models), links={"next": None})
    offset = _integer(query.get("offset"), "offset", default=0, low=0)
    limit = _integer(query.get("limit"), "limit", default=DEFAULT_PAGE, low=1, high=MAX_PAGE)
    following = None
    if offset + limit < len(models):
        params = {**query, "offset": str(offset + limit), "limit": str(limit)}
        following = f"{request.url.path}?{urlencode(params)}"
    page = models[offset : offset + limit]
    return ModelsPage(data=page, total_count=len(models), links={"next": following})


def _integer(raw: str | None, name: str, *, default: int, low: int, high: int | None = None) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"`{name}` must be an integer", field=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequest(f"`{name}` must be {bounds}", field=name)
    return value


def _model_id(request: Request) -> str:
    return f"{request.path_params['author']}/{request.path_params['slug']}"


async def get_model(request: Request) -> Response:
    view = state_of(request).view
    model_id = _model_id(request)
    model = view.models.get(model_id)
    if model is None:
        raise NotFound(f"Model {model_id} not found")
    return JSONBytes(encode(ModelEnvelope(data=model)))


async def model_endpoints(request: Request) -> Response:
    view = state_of(request).view
    model_id = _model_id(request)
    health = state_of(request).chat.health
    now = time.monotonic()
    data = view.endpoints_data(model_id, lambda key: health.snapshot(key, now))
    if data is None:
        raise NotFound(f"Model {model_id} not found")
    return JSONBytes(encode(EndpointsEnvelope(data=data)))


async def list_providers(request: Request) -> Response:
    return JSONBytes(encode(ProvidersEnvelope(data=state_of(request).view.providers_out())))
