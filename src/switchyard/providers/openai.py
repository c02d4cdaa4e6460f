"""OpenAI Chat Completions, and every server that speaks it (vLLM, llama.cpp, Groq, ...).

Order: constants, credentials, request building, response parsing, stream parsing, errors.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.catalog.schema import ParameterMap
from switchyard.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.providers.base import StreamState, UpstreamRequest
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent, SSEParser
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult, Message, StreamOptions
from switchyard.wire.codec import encode

# --- constants ----------------------------------------------------------------------------

# Request fields the Chat Completions protocol understands, beyond messages/model/stream.
# Of these, a field is forwarded only when the endpoint lists it as supported (or it is
# protocol plumbing that every endpoint takes).
ALWAYS_FORWARDED = frozenset({"user", "service_tier", "prompt_cache_key"})
SUPPORT_GATED = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "stop",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "prediction",
        "web_search_options",
        "reasoning_effort",
        "modalities",
        "verbosity",
        # Non-OpenAI samplers that vLLM and llama.cpp servers accept as extensions.
        "top_k",
        "min_p",
        "repetition_penalty",
    }
)
# Parameters whose support is implied by another name in the catalog's list.
SUPPORT_ALIASES = {
    "max_completion_tokens": "max_tokens",
    "max_tokens": "max_completion_tokens",
    "parallel_tool_calls": "tools",
}

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    # Mistral: the context window, not max_tokens, cut the reply
    # (https://docs.mistral.ai/api/ , ChatCompletionChoice.finish_reason).
    "model_length": "length",
}

_STREAM_OPTIONS = StreamOptions(include_usage=True)
_result_decoder = msgspec.json.Decoder(ChatResult)
_chunk_decoder = msgspec.json.Decoder(ChatChunk)


class _ErrorBody(msgspec.Struct):
    error: dict[str, Any] | str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


# --- credentials --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str | None
    base_url: str
    api_version: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(base_url={self.base_url!r}, api_key={'set' if self.api_key else None})"


def resolve_credentials(
    spec: ProviderSpec, config: ProviderConfig | None, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """Config file first, then the vendor SDK's environment variables; None if unusable."""
    env = os.environ if environ is None else environ
    config = config or ProviderConfig()
    if not config.enabled:
        return None
    api_key = config.api_key or (env.get(spec.api_key_env) if spec.api_key_env else None)
    base_url = (
        config.base_url or (env.get(spec.base_url_env) if spec.base_url_env else None)
    ) or spec.base_url
    api_version = (
        config.api_version
        or (env.get(spec.api_version_env) if spec.api_version_env else None)
        or spec.api_version
    )
    if not base_url or (spec.requires_api_key and not api_key):
        return None
    return Credentials(api_key or None, base_url.rstrip("/"), api_version)


# --- request building ---------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _not_forwarded(supported: frozenset[str]) -> tuple[str, ...]:
    """Request fields an endpoint with these parameters never receives (computed once)."""
    return tuple(
        name
        for name in ChatRequest.__struct_fields__
        if name not in ("messages", "model", "stream")
        and name not in ALWAYS_FORWARDED
        and not (
            name in SUPPORT_GATED
            and (name in supported or SUPPORT_ALIASES.get(name, "") in supported)
        )
    )


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """What :meth:`OpenAIAdapter.build_request` does to one endpoint's requests.

    Worked out once per endpoint from its supported parameters and the provider's
    :class:`~switchyard.catalog.schema.ParameterMap`, so a request pays only for the quirks
    it actually hits (a host without quirks pays nothing).
    """

    # Fields never sent: unsupported by the endpoint, or dropped by the host's map.
    blank: tuple[str, ...]
    # (field, name on the wire, value map or None) for fields the host renames or respells.
    moved: tuple[tuple[str, str, Mapping[str, str] | None], ...]
    # Whether a stream asks for usage (a host that rejects stream_options reports it anyway).
    stream_usage: bool
    # Message fields the host rejects.
    message_drop: tuple[str, ...] = ()


def plan_request(supported: frozenset[str], quirks: ParameterMap) -> RequestPlan:
    dropped = frozenset(quirks.drop)
    blank = _not_forwarded(supported) + tuple(
        name for name in quirks.drop if name not in _not_forwarded(supported)
    )
    moved = tuple(
        (name, quirks.rename.get(name, name), quirks.values.get(name))
        for name in dict.fromkeys([*quirks.rename, *quirks.values])
        if name not in blank
    )
    return RequestPlan(blank, moved, "stream_options" not in dropped, tuple(quirks.message_drop))


_FIELDS = frozenset(ChatRequest.__struct_fields__)


def _apply_moves(
    request: ChatRequest, plan: RequestPlan, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """Take renamed / respelled fields out of the struct; return them as wire-named extras."""
    extra: dict[str, Any] | None = None
    for name, wire, values in plan.moved:
        value = getattr(request, name)
        if value is UNSET:
            continue
        if wire == name:
            # Only respelled: leave the struct alone unless this value is in the map.
            if values is None or not isinstance(value, str) or value not in values:
                continue
        elif wire in _FIELDS:
            # Renamed onto another request field (max_completion_tokens -> max_tokens): the
            # renamed value wins, as in ChatRequest.output_limit, and JSON keys stay unique.
            changes[wire] = UNSET
        if values is not None and isinstance(value, str):
            value = values.get(value, value)
        changes[name] = UNSET
        if extra is None:
            extra = {}
        extra[wire] = value
    return extra


def _strip_messages(messages: list[Message], names: tuple[str, ...]) -> list[Message] | None:
    """The messages without the named fields; None when no message sets any of them."""
    out: list[Message] | None = None
    for index, message in enumerate(messages):
        found = {name: UNSET for name in names if getattr(message, name, UNSET) is not UNSET}
        if found:
            if out is None:
                out = list(messages)
            out[index] = msgspec.structs.replace(message, **found)
    return out


class OpenAIAdapter:
    """Chat Completions over ``POST {base_url}/chat/completions`` with a Bearer key."""

    def __init__(self, spec: ProviderSpec, credentials: Credentials, catalog: Catalog) -> None:
        self.spec = spec
        self.credentials = credentials
        self._catalog = catalog
        self._plans: dict[str, RequestPlan] = {}
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        self._headers.update(spec.parameter_map.headers)
        if credentials.api_key:
            self._headers["Authorization"] = f"Bearer {credentials.api_key}"

    def url(self, endpoint: Endpoint) -> str:
        return f"{self.credentials.base_url}/chat/completions"

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        return self._headers

    def upstream_model(self, endpoint: Endpoint) -> str | msgspec.UnsetType:
        return endpoint.upstream_model

    def plan(self, endpoint: Endpoint) -> RequestPlan:
        found = self._plans.get(endpoint.key)
        if found is None:
            found = self._plans[endpoint.key] = plan_request(
                self._catalog.parameter_set(endpoint), self.spec.parameter_map
            )
        return found

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest:
        plan = self._plans.get(endpoint.key) or self.plan(endpoint)
        changes: dict[str, Any] = {
            name: UNSET for name in plan.blank if getattr(request, name) is not UNSET
        }
        extra = _apply_moves(request, plan, changes) if plan.moved else None
        if plan.message_drop:
            stripped = _strip_messages(request.messages, plan.message_drop)
            if stripped is not None:
                changes["messages"] = stripped
        changes["model"] = self.upstream_model(endpoint)
        changes["stream"] = stream
        # OpenAI only reports usage on a stream when asked; we always need it.
        changes["stream_options"] = _STREAM_OPTIONS if stream and plan.stream_usage else UNSET
        body = encode(msgspec.structs.replace(request, **changes))
        if extra:
            # Splice the renamed fields into the object: the body always has "messages", so
            # it is never "{}" and a comma is always right.
            body = body[:-1] + b"," + encode(extra)[1:]
        return UpstreamRequest("POST", self.url(endpoint), self.headers(endpoint), body)

    # --- response parsing -----------------------------------------------------------------

    def parse_response(self, body: bytes) -> ChatResult:
        result = _result_decoder.decode(body)
        for choice in result.choices:
            native = choice.finish_reason
            choice.native_finish_reason = native
            choice.finish_reason = normalise_finish(native)
        return result

    # --- stream parsing -------------------------------------------------------------------

    def stream_parser(self) -> SSEParser:
        return SSEParser()

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        try:
            chunk = _chunk_decoder.decode(event.data)
        except msgspec.ValidationError:
            # Not a chunk: most likely an error object sent in place of one.
            self._raise_stream_error(event.data)
            raise
        if chunk.error is not UNSET:
            self._raise_stream_error(event.data)
        for choice in chunk.choices:
            native = choice.finish_reason
            if native is not None:
                choice.native_finish_reason = native
                choice.finish_reason = normalise_finish(native)
        return [chunk]

    def _raise_stream_error(self, data: bytes) -> None:
        try:
            error = _error_decoder.decode(data).error
        except msgspec.DecodeError:
            error = None
        if error is None:
            return
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamError(
            f"{self.spec.name} reported an error mid-stream: {message}",
            provider=self.spec.name,
            raw=error,
        )

    # --- errors ---------------------------------------------------------------------------

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return map_openai_error(self.spec.name, status, headers, body)


def normalise_finish(native: str | None) -> str | None:
    if native is None:
        return None
    return FINISH_REASONS.get(native, "stop" if native == "eos" else "error")


def map_openai_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> UpstreamError:
    """Keep the provider's own error in metadata.raw; pick our status and retry policy."""
    try:
        raw: Any = _error_decoder.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        raw = body[:2000].decode("utf-8", "replace") or None
    detail = raw.get("message") if isinstance(raw, dict) else raw
    message = f"{provider} returned HTTP {status}" + (f": {detail}" if detail else "")
    retry_after = _retry_after(headers)
    common: dict[str, Any] = {"provider": provider, "upstream_status": status, "raw": raw}
    if status == 429:
        return UpstreamRateLimited(message, retry_after=retry_after, **common)
    if status in (408, 504, 524):
        return UpstreamTimeout(message, **common)
    if status == 503 or status == 529:
        return UpstreamUnavailable(message, retry_after=retry_after, **common)
    if status in (400, 413, 422):
        # The request itself is at fault: another provider would refuse it too.
        return UpstreamError(message, status=status, retryable=False, **common)
    # 401/403 (our credentials), 404 (model missing there), 5xx: another provider may work.
    return UpstreamError(message, **common)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
