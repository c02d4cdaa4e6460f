"""Which endpoints may serve a request, in which order. Pure: no I/O, no clock.

This is the gateway core's planner: it resolves ``model``/``models``, keeps endpoints whose
provider is configured and which can take the request's input (modalities, context length,
output length), and orders each model's endpoints cheapest first, models in the order asked.
Provider preferences, health and load balancing refine this ordering (routing issue).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from switchyard import tokens
from switchyard.catalog import Catalog, Endpoint, ModelSpec
from switchyard.errors import InvalidRequest, NoEndpoint, NotFound
from switchyard.routing.filters import endpoint_filter
from switchyard.routing.health import UNKNOWN, EndpointHealth
from switchyard.routing.order import arrange, sort_by
from switchyard.wire.chat import PART_MODALITY, ChatRequest, ProviderPreferences
from switchyard.wire.codec import encode

VARIANTS = frozenset({"nitro", "floor"})
_NO_PREFS = ProviderPreferences()


@dataclass(frozen=True, slots=True)
class Candidate:
    model: ModelSpec
    endpoint: Endpoint


@dataclass(slots=True)
class Plan:
    candidates: list[Candidate]
    # endpoint key -> the filter that left it out, for error messages and routing metadata
    excluded: dict[str, str] = field(default_factory=dict)
    strategy: str = ""
    sticky: bool = False


def requested_models(request: ChatRequest) -> list[tuple[str, str]]:
    """(model id, the request field that named it), primary first, without repeats."""
    named: list[tuple[str, str]] = []
    if isinstance(request.model, str):
        named.append((request.model, "model"))
    if isinstance(request.models, list):
        named.extend((m, f"models[{i}]") for i, m in enumerate(request.models))
    if not named:
        raise InvalidRequest("Missing required field `model` (or a `models` list)", field="model")
    seen: set[str] = set()
    unique = []
    for model_id, where in named:
        if model_id not in seen:
            seen.add(model_id)
            unique.append((model_id, where))
    return unique


def input_modalities(request: ChatRequest) -> set[str]:
    needed = {"text"}
    for message in request.messages:
        content = message.content
        if isinstance(content, list):
            needed.update(PART_MODALITY[type(part)] for part in content)
    return needed


def prompt_upper_bound(request: ChatRequest, body_size: int | None = None) -> int:
    """A cheap bound no count can exceed: a token per UTF-8 byte, plus each image's tokens.

    The request body's size serves when known: JSON escaping never makes text shorter, so
    the body has at least as many bytes as the messages and tools it carries.
    """
    size = body_size if body_size is not None else len(_prompt_bytes(request))
    images = tokens.image_count(request.messages)
    return size + images * tokens.MAX_IMAGE_TOKENS + tokens.REPLY_PRIMING


def _prompt_bytes(request: ChatRequest) -> bytes:
    return encode(request.messages) + (encode(request.tools) if request.tools else b"")


def plan(
    request: ChatRequest,
    catalog: Catalog,
    available: Collection[str],
    count_prompt: Callable[[ModelSpec], int | None],
    body_size: int | None = None,
    health: Mapping[str, EndpointHealth] | None = None,
    rng: random.Random | None = None,
    sticky: str | None = None,
) -> Plan:
    """The endpoints to try, in order.

    ``available``: provider slugs with working credentials. ``count_prompt(model)`` returns
    the exact prompt size for that model's tokenizer, or None when the serving provider counts
    for itself (the embedded models). ``health`` is a snapshot per endpoint key; ``rng``
    drives load balancing; ``sticky`` names an endpoint this conversation should stay on.
    """
    health = health or {}
    rng = rng or random.Random()
    prefs = request.provider if isinstance(request.provider, ProviderPreferences) else _NO_PREFS
    needed = input_modalities(request)
    output = request.output_limit()
    result = Plan(candidates=[])
    excluded_by = endpoint_filter(request, prefs, catalog, available)
    upper_bound: int | None = None
    models: list[tuple[ModelSpec, str | None]] = []
    for model_id, where in requested_models(request):
        model, variant = resolve_model(catalog, model_id)
        if model is None:
            raise InvalidRequest(f"{model_id} is not a valid model ID", field=where)
        if model.architecture.output_modalities == ["embeddings"]:
            raise InvalidRequest(
                f"{model_id} is an embeddings model; it is served by /embeddings", field=where
            )
        if all(model.id != seen.id for seen, _ in models):  # "x:nitro" and "x" are one model
            models.append((model, variant))

    groups: list[tuple[ModelSpec, list[Endpoint]]] = []
    for model, _variant in models:
        missing = needed - set(model.architecture.input_modalities)
        endpoints = catalog.endpoints_for(model.id)
        if missing:
            for e in endpoints:
                result.excluded[e.key] = "input_modalities"
            continue
        prompt_tokens: int | None = None
        kept: list[Endpoint] = []
        for endpoint in endpoints:
            reason = excluded_by(endpoint)
            if reason is None:
                if upper_bound is None:
                    upper_bound = prompt_upper_bound(request, body_size)
                prompt_room = endpoint.context_length - (output or 0)
                if endpoint.max_prompt_tokens is not None:
                    prompt_room = min(prompt_room, endpoint.max_prompt_tokens)
                if upper_bound > prompt_room:
                    # Only now is an exact count worth its cost.
                    if prompt_tokens is None:
                        prompt_tokens = count_prompt(model)
                    if prompt_tokens is not None and prompt_tokens > prompt_room:
                        reason = "context_length"
            if reason is not None:
                result.excluded[endpoint.key] = reason
            else:
                kept.append(endpoint)
        if kept:
            groups.append((model, kept))

    if not groups:
        raise _nothing_serves([m for m, _ in models], needed, result)

    by, partition = sort_by(prefs, models[0][1])
    if by is not None and partition == "none" and len(groups) > 1:
        # One ranking across every model: fallback models compete with the primary.
        everything = [e for _, endpoints in groups for e in endpoints]
        ranked, result.strategy = arrange(everything, request, prefs, catalog, health, rng, by)
        result.candidates = [Candidate(catalog.models[e.model], e) for e in ranked]
    else:
        for model, endpoints in groups:
            ranked, strategy = arrange(endpoints, request, prefs, catalog, health, rng, by)
            result.strategy = result.strategy or strategy
            result.candidates.extend(Candidate(model, e) for e in ranked)
    if not result.candidates:
        # allow_fallbacks=false with an `order` that names none of the endpoints left.
        raise NotFound(
            "No endpoint in `provider.order` can serve this request, and `allow_fallbacks` "
            "is false",
            metadata={"excluded": result.excluded, "order": prefs.order},
        )
    # A conversation stays on its endpoint only where the router chooses freely: an explicit
    # order or sort from the client wins over cache affinity.
    if sticky is not None and result.strategy == "load_balance":
        _stick(result, sticky, health)
    return result


def resolve_model(catalog: Catalog, model_id: str) -> tuple[ModelSpec | None, str | None]:
    """A catalog model and its routing variant (``:nitro``, ``:floor``), if any."""
    model = catalog.model(model_id)
    if model is not None:
        return model, None
    base, _, variant = model_id.rpartition(":")
    if base and variant in VARIANTS:
        return catalog.model(base), variant
    return None, None


def _stick(result: Plan, sticky: str, health: Mapping[str, EndpointHealth]) -> None:
    """Move the conversation's endpoint to the front while it is healthy, if it serves the
    primary model: a fallback model's endpoint never jumps ahead of the primary."""
    primary = result.candidates[0].model.id
    for index, candidate in enumerate(result.candidates):
        if candidate.model.id != primary:
            return
        if candidate.endpoint.key == sticky:
            if index and not health.get(sticky, UNKNOWN).recently_failing:
                result.candidates.insert(0, result.candidates.pop(index))
                result.sticky = True
            elif index == 0:
                result.sticky = True
            return


def _nothing_serves(models: list[ModelSpec], needed: set[str], result: Plan) -> Exception:
    names = ", ".join(m.id for m in models)
    by_filter: dict[str, list[str]] = {}
    for key, reason in result.excluded.items():
        by_filter.setdefault(reason, []).append(key)
    metadata = {"excluded": result.excluded, "filters": by_filter}
    # Unconfigured providers explain nothing the user can change when something else does.
    reasons = set(by_filter) - {"provider_not_configured"} or set(by_filter)
    if reasons == {"context_length"}:
        return InvalidRequest(
            f"The prompt does not fit the context length of any endpoint serving {names}",
            field="messages",
            metadata=metadata,
        )
    if reasons == {"max_tokens"}:
        return InvalidRequest(
            f"max_tokens exceeds the maximum output of every endpoint serving {names}",
            field="max_tokens",
            metadata=metadata,
        )
    if reasons == {"input_modalities"}:
        kinds = "/".join(sorted(needed - {"text"}))
        return NotFound(
            f"No endpoints found that support {kinds} input for {names}", metadata=metadata
        )
    if reasons == {"provider_not_configured"}:
        return NoEndpoint(
            f"No provider is configured for {names}; set its credentials to enable it",
            metadata=metadata,
        )
    listed = ", ".join(f"{reason} ({len(keys)})" for reason, keys in sorted(by_filter.items()))
    return NotFound(
        f"No endpoints found for {names} that match the request; excluded by: {listed}",
        metadata=metadata,
    )
