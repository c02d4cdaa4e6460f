"""Which endpoints may serve a request, in which order. Pure: no I/O, no clock.

This is the gateway core's planner: it resolves ``model``/``models``, keeps endpoints whose
provider is configured and which can take the request's input (modalities, context length,
output length), and orders each model's endpoints cheapest first, models in the order asked.
Provider preferences, health and load balancing refine this ordering (routing issue).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from switchyard import tokens
from switchyard.catalog import Catalog, Endpoint, ModelSpec
from switchyard.errors import InvalidRequest, NoEndpoint, NotFound
from switchyard.wire.chat import PART_MODALITY, ChatRequest
from switchyard.wire.codec import encode


@dataclass(frozen=True, slots=True)
class Candidate:
    model: ModelSpec
    endpoint: Endpoint


@dataclass(slots=True)
class Plan:
    candidates: list[Candidate]
    # endpoint key -> why it was left out, for error messages and routing metadata
    excluded: dict[str, str] = field(default_factory=dict)


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
) -> Plan:
    """``available``: provider slugs with working credentials.

    ``count_prompt(model)`` returns the exact prompt size for that model's tokenizer, or
    None when the serving provider counts for itself (the embedded models).
    """
    needed = input_modalities(request)
    output = request.output_limit()
    result = Plan(candidates=[])
    upper_bound: int | None = None
    models: list[ModelSpec] = []
    for model_id, where in requested_models(request):
        model = catalog.model(model_id)
        if model is None:
            raise InvalidRequest(f"{model_id} is not a valid model ID", field=where)
        models.append(model)

    for model in models:
        missing = needed - set(model.architecture.input_modalities)
        if missing:
            for e in catalog.endpoints_for(model.id):
                result.excluded[e.key] = f"no {'/'.join(sorted(missing))} input"
            continue
        prompt_tokens: int | None = None
        endpoints = sorted(catalog.endpoints_for(model.id), key=_price_key)
        for endpoint in endpoints:
            if endpoint.provider not in available:
                result.excluded[endpoint.key] = "provider not configured"
                continue
            if (
                output is not None
                and endpoint.max_completion_tokens is not None
                and (output > endpoint.max_completion_tokens)
            ):
                result.excluded[endpoint.key] = (
                    f"max output {endpoint.max_completion_tokens} tokens < requested {output}"
                )
                continue
            if upper_bound is None:
                upper_bound = prompt_upper_bound(request, body_size)
            if upper_bound + (output or 0) > endpoint.context_length:
                # Only now is an exact count worth its cost.
                if prompt_tokens is None:
                    prompt_tokens = count_prompt(model)
                if prompt_tokens is not None and prompt_tokens + (output or 0) > (
                    endpoint.context_length
                ):
                    result.excluded[endpoint.key] = (
                        f"context {endpoint.context_length} tokens < prompt {prompt_tokens}"
                        + (f" + output {output}" if output else "")
                    )
                    continue
            result.candidates.append(Candidate(model, endpoint))

    if not result.candidates:
        raise _nothing_serves(models, needed, result)
    return result


def _price_key(endpoint: Endpoint) -> tuple[object, ...]:
    p = endpoint.pricing
    return (p.prompt + p.completion, p.request)


def _nothing_serves(models: list[ModelSpec], needed: set[str], result: Plan) -> Exception:
    names = ", ".join(m.id for m in models)
    metadata = {"excluded": result.excluded}
    reasons = set(result.excluded.values())
    if any(r.startswith("context") for r in reasons):
        return InvalidRequest(
            f"The prompt does not fit the context length of any endpoint serving {names}",
            field="messages",
            metadata=metadata,
        )
    if any(r.startswith("max output") for r in reasons):
        return InvalidRequest(
            f"max_tokens exceeds the maximum output of every endpoint serving {names}",
            field="max_tokens",
            metadata=metadata,
        )
    if any(r.startswith("no ") for r in reasons):
        kinds = "/".join(sorted(needed - {"text"}))
        return NotFound(
            f"No endpoints found that support {kinds} input for {names}", metadata=metadata
        )
    return NoEndpoint(
        f"No provider is configured for {names}; set its credentials to enable it",
        metadata=metadata,
    )
