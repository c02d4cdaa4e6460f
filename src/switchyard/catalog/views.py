"""The catalog as the API shows it: models, their endpoints and providers, with filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import get_args

from switchyard.catalog.schema import (
    Catalog,
    Endpoint,
    InputModality,
    ModelSpec,
    OutputModality,
    Pricing,
    ProviderSpec,
)
from switchyard.errors import InvalidRequest
from switchyard.routing.health import BreakerState, EndpointHealth
from switchyard.routing.health import Percentiles as HealthPercentiles
from switchyard.wire.models import (
    ArchitectureOut,
    EndpointOut,
    EndpointsData,
    Links,
    ModelOut,
    Percentiles,
    ProviderOut,
    ToolChoiceSupport,
    TopProvider,
)

MILLION = Decimal(1_000_000)


def _timestamp(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def pricing_out(pricing: Pricing) -> dict[str, str]:
    out = {
        "prompt": _s(pricing.prompt),
        "completion": _s(pricing.completion),
        "request": _s(pricing.request),
        "image": _s(pricing.image),
    }
    for name in ("input_cache_read", "input_cache_write", "internal_reasoning", "web_search"):
        value = getattr(pricing, name)
        if value is not None:
            out[name] = _s(value)
    return out


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _architecture(model: ModelSpec) -> ArchitectureOut:
    a = model.architecture
    return ArchitectureOut(
        modality=a.modality,
        input_modalities=list(a.input_modalities),
        output_modalities=list(a.output_modalities),
        tokenizer=a.tokenizer,
        instruct_type=a.instruct_type,
    )


class CatalogView:
    """Precomputes what does not change while the server runs."""

    def __init__(self, catalog: Catalog, available: Collection[str]) -> None:
        self.catalog = catalog
        self.available = frozenset(available)
        self.models: dict[str, ModelOut] = {}
        for model in catalog.models.values():
            self.models[model.id] = self._model_out(model)

    def endpoints(self, model_id: str) -> list[Endpoint]:
        return [e for e in self.catalog.endpoints_for(model_id) if e.provider in self.available]

    def is_available(self, model_id: str) -> bool:
        return bool(self.endpoints(model_id))

    def _model_out(self, model: ModelSpec) -> ModelOut:
        endpoints = self.endpoints(model.id) or self.catalog.endpoints_for(model.id)
        cheapest = min(
            endpoints, key=lambda e: e.pricing.prompt + e.pricing.completion, default=None
        )
        top = max(endpoints, key=lambda e: e.context_length, default=None)
        params: list[str] = []
        for e in endpoints:
            params.extend(p for p in self.catalog.endpoint_parameters(e) if p not in params)
        return ModelOut(
            id=model.id,
            canonical_slug=model.id,
            hugging_face_id=model.hugging_face_id,
            name=model.name,
            created=_timestamp(model.created),
            description=model.description,
            context_length=model.context_length,
            architecture=_architecture(model),
            pricing=pricing_out(cheapest.pricing if cheapest else Pricing()),
            top_provider=TopProvider(
                context_length=top.context_length if top else model.context_length,
                max_completion_tokens=top.max_completion_tokens if top else None,
                is_moderated=bool(top and self.catalog.providers[top.provider].is_moderated),
            ),
            per_request_limits=None,
            supported_parameters=params or list(model.supported_parameters),
            default_parameters=dict(model.default_parameters) or None,
            supported_voices=None,
            knowledge_cutoff=model.knowledge_cutoff.isoformat() if model.knowledge_cutoff else None,
            expiration_date=model.expiration_date.isoformat() if model.expiration_date else None,
            links=Links(details=f"/api/v1/models/{model.id}/endpoints"),
        )

    def endpoint_out(self, endpoint: Endpoint, health: EndpointHealth | None = None) -> EndpointOut:
        model = self.catalog.models[endpoint.model]
        provider = self.catalog.providers[endpoint.provider]
        params = list(self.catalog.endpoint_parameters(endpoint))
        tool_choice = "tool_choice" in params
        return EndpointOut(
            name=f"{provider.name} | {model.id}",
            model_id=model.id,
            model_name=model.name,
            context_length=endpoint.context_length,
            pricing=pricing_out(endpoint.pricing),
            provider_name=provider.name,
            tag=endpoint.tag or endpoint.provider,
            quantization=endpoint.quantization,
            max_completion_tokens=endpoint.max_completion_tokens,
            max_prompt_tokens=endpoint.max_prompt_tokens,
            supported_parameters=params,
            status=0 if health is None or health.breaker is BreakerState.CLOSED else -1,
            # Measured by routing; null until the endpoint has served requests.
            uptime_last_5m=health.uptime_5m if health else None,
            uptime_last_30m=health.uptime_30m if health else None,
            uptime_last_1d=health.uptime_1d if health else None,
            latency_last_30m=_percentiles(health.latency if health else None),
            throughput_last_30m=_percentiles(health.throughput if health else None),
            supports_implicit_caching=endpoint.supports_implicit_caching,
            supports_tool_choice=ToolChoiceSupport(
                auto=tool_choice, function=tool_choice, none=tool_choice, required=tool_choice
            ),
            native_tools={},
            service_tier=None,
            supports_diarization=False,
        )

    def endpoints_data(
        self, model_id: str, health: Callable[[str], EndpointHealth] | None = None
    ) -> EndpointsData | None:
        model = self.catalog.model(model_id)
        if model is None:
            return None
        return EndpointsData(
            id=model.id,
            name=model.name,
            created=_timestamp(model.created),
            description=model.description,
            architecture=_architecture(model),
            endpoints=[
                self.endpoint_out(e, health(e.key) if health else None)
                for e in self.endpoints(model_id)
            ],
        )

    def providers_out(self) -> list[ProviderOut]:
        return [_provider_out(p) for p in self.catalog.providers.values()]

    def list_models(self, query: Mapping[str, str]) -> list[ModelOut]:
        """The models a client can call, filtered and sorted as /models' query asks."""
        models = [self.models[m] for m in self.catalog.models if self.is_available(m)]
        if params := _csv(query.get("supported_parameters")):
            models = [m for m in models if set(params) <= set(m.supported_parameters)]
        outputs = _modalities(query, "output_modalities", OUTPUT_MODALITIES | {"all"}) or ["text"]
        if "all" not in outputs:
            models = [m for m in models if set(outputs) & set(m.architecture.output_modalities)]
        if inputs := _modalities(query, "input_modalities", INPUT_MODALITIES):
            models = [m for m in models if set(inputs) <= set(m.architecture.input_modalities)]
        if q := (query.get("q") or "").strip().lower():
            models = [m for m in models if q in m.id.lower() or q in m.name.lower()]
        if context := query.get("context"):
            minimum = _int(context, "context")
            models = [m for m in models if m.context_length >= minimum]
        if authors := _csv(query.get("model_authors")):
            models = [m for m in models if m.id.split("/", 1)[0] in authors]
        if providers := _csv(query.get("providers")):
            wanted = {p.lower() for p in providers}
            models = [
                m
                for m in models
                if any(
                    e.provider in wanted
                    or self.catalog.providers[e.provider].name.lower() in wanted
                    for e in self.endpoints(m.id)
                )
            ]
        for name, field, is_minimum in (
            ("min_price", "prompt", True),
            ("max_price", "prompt", False),
            ("min_output_price", "completion", True),
            ("max_output_price", "completion", False),
        ):
            if (raw := query.get(name)) is not None:
                bound = _decimal(raw, name)  # USD per million tokens
                models = [
                    m
                    for m in models
                    if _within(Decimal(m.pricing[field]) * MILLION, bound, is_minimum)
                ]
        return _sort(models, query.get("sort"))


def _percentiles(stats: HealthPercentiles | None) -> Percentiles | None:
    if stats is None:
        return None
    return Percentiles(p50=stats.p50, p75=stats.p75, p90=stats.p90, p99=stats.p99)


def _within(price: Decimal, bound: Decimal, is_minimum: bool) -> bool:
    return price >= bound if is_minimum else price <= bound


def _sort(models: list[ModelOut], sort: str | None) -> list[ModelOut]:
    def avg_price(m: ModelOut) -> Decimal:
        return Decimal(m.pricing["prompt"]) + Decimal(m.pricing["completion"])

    if sort in (None, ""):
        return models
    if sort == "newest":
        return sorted(models, key=lambda m: m.created, reverse=True)
    if sort == "pricing-low-to-high":
        return sorted(models, key=avg_price)
    if sort == "pricing-high-to-low":
        return sorted(models, key=avg_price, reverse=True)
    if sort == "context-high-to-low":
        return sorted(models, key=lambda m: m.context_length, reverse=True)
    if sort in MEASURED_SORTS:
        return models  # ordered by the caller, which has the live stats and the database
    if sort in UNRANKED_SORTS:
        return models
    raise InvalidRequest(f"Unknown sort {sort!r}", field="sort")


# Sorts by what this server measured: throughput and latency from the health tracker, use
# from the week's recorded tokens (server/models_api.py applies them).
MEASURED_SORTS = frozenset(
    {"throughput-high-to-low", "latency-low-to-high", "most-popular", "top-weekly"}
)
# OpenRouter ranks these by its own evaluations, which a self-hosted server does not have:
# accepted, so clients that send them work, and the catalog order is kept.
UNRANKED_SORTS = frozenset(
    {
        "intelligence-high-to-low",
        "coding-high-to-low",
        "agentic-high-to-low",
        "design-arena-elo-high-to-low",
    }
)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


INPUT_MODALITIES = frozenset(get_args(InputModality))
OUTPUT_MODALITIES = frozenset(get_args(OutputModality))


def _modalities(query: Mapping[str, str], name: str, known: frozenset[str]) -> list[str]:
    """A comma-separated list of modalities; a 400 naming the parameter for an unknown one
    (a typo would otherwise quietly match nothing)."""
    wanted = _csv(query.get(name))
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise InvalidRequest(
            f"`{name}` has unknown modality {unknown[0]!r}; known: {', '.join(sorted(known))}",
            field=name,
        )
    return wanted


def _int(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"`{name}` must be an integer", field=name) from None
    if value < 1:
        raise InvalidRequest(f"`{name}` must be at least 1", field=name)
    return value


def _decimal(raw: str, name: str) -> Decimal:
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise InvalidRequest(f"`{name}` must be a number", field=name) from None
    if not value.is_finite() or value < 0:
        raise InvalidRequest(f"`{name}` must be a non-negative number", field=name)
    return value


def _provider_out(p: ProviderSpec) -> ProviderOut:
    return ProviderOut(
        name=p.name,
        slug=p.slug,
        privacy_policy_url=p.privacy_policy_url,
        terms_of_service_url=p.terms_of_service_url,
        status_page_url=p.status_page_url,
        headquarters=p.headquarters,
        datacenters=p.datacenters or None,
    )
