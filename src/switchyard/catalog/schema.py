"""Catalog records. Prices are USD per token (per image / request where named), as Decimal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct, field
from msgspec.structs import replace

from switchyard.wire.chat import (
    AssistantMessage,
    ChatRequest,
    DeveloperMessage,
    Quantization,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

InputModality = Literal["text", "image", "file", "audio", "video"]
OutputModality = Literal["text", "image", "embeddings", "audio", "video"]
Slug = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
ModelId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*$")]
Price = Decimal  # non-negativity is checked in __post_init__ (msgspec bounds are numeric-only)


def _check_prices(record: Struct) -> None:
    for name in record.__struct_fields__:
        value = getattr(record, name)
        if not isinstance(value, Decimal):
            continue
        if not value.is_finite() or value < 0:
            raise ValueError(f"price `{name}` must be a finite, non-negative number")
        # Storage keeps money in picodollars; a finer price could not be charged exactly.
        if value != value.quantize(Decimal("1e-12")):
            raise ValueError(f"price `{name}` has more than 12 decimal places")


class LongContextPricing(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Dearer per-token prices for a request whose prompt is longer than ``above`` tokens
    (Gemini 2.5 Pro: 200K). A price left out is the base tier's."""

    above: Annotated[int, Meta(gt=0)]
    prompt: Price | None = None
    completion: Price | None = None
    input_cache_read: Price | None = None
    input_cache_write: Price | None = None
    internal_reasoning: Price | None = None

    def __post_init__(self) -> None:
        _check_prices(self)


class Pricing(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    prompt: Price = Decimal(0)
    completion: Price = Decimal(0)
    request: Price = Decimal(0)
    image: Price = Decimal(0)
    input_cache_read: Price | None = None
    input_cache_write: Price | None = None
    internal_reasoning: Price | None = None
    web_search: Price | None = None
    long_context: LongContextPricing | None = None

    def __post_init__(self) -> None:
        _check_prices(self)

    def is_free(self) -> bool:
        return not (self.prompt or self.completion or self.request or self.image)

    def for_prompt(self, prompt_tokens: int) -> Pricing:
        """The prices that apply to a request with this many prompt tokens (cached ones
        included, as the vendors count them)."""
        tier = self.long_context
        if tier is None or prompt_tokens <= tier.above:
            return self
        overrides = {
            name: getattr(tier, name)
            for name in tier.__struct_fields__
            if name != "above" and getattr(tier, name) is not None
        }
        return replace(self, long_context=None, **overrides)


class Architecture(Struct, frozen=True, forbid_unknown_fields=True):
    input_modalities: list[InputModality]
    output_modalities: list[OutputModality]
    tokenizer: str
    instruct_type: str | None = None

    @property
    def modality(self) -> str:
        return "+".join(self.input_modalities) + "->" + "+".join(self.output_modalities)


class ModelSpec(Struct, frozen=True, forbid_unknown_fields=True):
    id: ModelId
    name: str
    created: dt.date
    description: str
    context_length: Annotated[int, Meta(gt=0)]
    architecture: Architecture
    supported_parameters: list[str]
    # How prompt tokens are counted: a tiktoken encoding name, or "native" for models whose
    # serving provider counts its own tokens (the embedded llama.cpp models).
    encoding: str = "o200k_base"
    default_parameters: dict[str, float | int | None] = field(default_factory=dict)
    hugging_face_id: str | None = None
    knowledge_cutoff: dt.date | None = None
    expiration_date: dt.date | None = None

    @property
    def author(self) -> str:
        return self.id.split("/", 1)[0]


class DataPolicy(Struct, frozen=True, forbid_unknown_fields=True):
    training: bool = False
    retains_prompts: bool = False
    retention_days: int | None = None


# Message fields that are optional on every message type that has them: a host's map may
# remove them (the role, content, tool calls and call ids carry the conversation itself).
OPTIONAL_MESSAGE_FIELDS = frozenset(
    name
    for kind in (SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage)
    for name in kind.__struct_fields__
    if name not in ("content", "tool_calls", "tool_call_id")
)


class ParameterMap(Struct, frozen=True, forbid_unknown_fields=True):
    """How one OpenAI-compatible host departs from the Chat Completions request (Portkey-style).

    Names are request fields as clients send them. The supported-parameter gate runs first:
    a field the endpoint does not support is never sent, whatever the map says.
    """

    # Fields the host knows under another name (Mistral: seed -> random_seed).
    rename: dict[str, str] = field(default_factory=dict)
    # Fields the host rejects outright, even plumbing we add ourselves (stream_options).
    drop: list[str] = field(default_factory=list)
    # Per field, string values the host spells differently (Mistral: required -> any).
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    # Message fields the host rejects, removed from every message that has them
    # (Groq: messages[].name; Mistral: an assistant turn's reasoning).
    message_drop: list[str] = field(default_factory=list)
    # Fixed headers sent with every request (OpenRouter's app attribution).
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Catch a misspelt field at start-up rather than silently never applying it.
        fields = set(ChatRequest.__struct_fields__) - {"messages", "model", "stream"}
        for section, names in (
            ("rename", self.rename),
            ("drop", self.drop),
            ("values", self.values),
        ):
            unknown = sorted(set(names) - fields)
            if unknown:
                raise ValueError(
                    f"parameter_map.{section} names unknown request fields: {', '.join(unknown)}"
                )
        droppable = OPTIONAL_MESSAGE_FIELDS
        unknown = sorted(set(self.message_drop) - droppable)
        if unknown:
            raise ValueError(
                f"parameter_map.message_drop names fields messages cannot lose: "
                f"{', '.join(unknown)} (known: {', '.join(sorted(droppable))})"
            )
        for source, target in self.rename.items():
            if not target or target in ("messages", "model", "stream") or target == source:
                raise ValueError(f"parameter_map.rename.{source}: invalid target {target!r}")

    def is_empty(self) -> bool:
        return not (self.rename or self.drop or self.values or self.message_drop or self.headers)


class ProviderSpec(Struct, frozen=True, forbid_unknown_fields=True):
    slug: Slug
    name: str
    # Which adapter in switchyard.providers speaks to it (openai, azure, local, ...).
    protocol: str
    base_url: str | None = None
    # Vendor SDK environment variables that supply credentials and overrides.
    api_key_env: str | None = None
    base_url_env: str | None = None
    api_version: str | None = None
    api_version_env: str | None = None
    requires_api_key: bool = True
    headquarters: str | None = None
    datacenters: list[str] = field(default_factory=list)
    privacy_policy_url: str | None = None
    terms_of_service_url: str | None = None
    status_page_url: str | None = None
    data_policy: DataPolicy = DataPolicy()
    is_moderated: bool = False
    # The host's departures from its protocol; applied by the OpenAI adapter.
    parameter_map: ParameterMap = ParameterMap()


class Endpoint(Struct, frozen=True, forbid_unknown_fields=True):
    """A model served by a provider, with that provider's limits and prices."""

    model: ModelId
    provider: Slug
    # The name the provider knows the model by (an Azure deployment, a vLLM model path, ...).
    upstream_model: str
    context_length: Annotated[int, Meta(gt=0)]
    pricing: Pricing
    max_completion_tokens: Annotated[int, Meta(gt=0)] | None = None
    max_prompt_tokens: Annotated[int, Meta(gt=0)] | None = None
    quantization: Quantization = "unknown"
    supported_parameters: list[str] | None = None  # None: the model's list
    supports_implicit_caching: bool = False
    # A variant of one provider (e.g. "azure/eu"); defaults to the provider slug.
    tag: str | None = None

    @property
    def key(self) -> str:
        """Unique within the catalog: the model and the provider tag that serves it."""
        return f"{self.model}@{self.tag or self.provider}"


class Catalog(Struct, frozen=True):
    models: dict[str, ModelSpec]
    providers: dict[str, ProviderSpec]
    endpoints: dict[str, list[Endpoint]]  # model id -> endpoints, in file order
    # endpoint key -> its parameters as a set, for the adapters' per-request lookups.
    parameter_sets: dict[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for endpoints in self.endpoints.values():
            for endpoint in endpoints:
                self.parameter_sets[endpoint.key] = frozenset(self.endpoint_parameters(endpoint))

    def model(self, model_id: str) -> ModelSpec | None:
        return self.models.get(model_id)

    def endpoints_for(self, model_id: str) -> list[Endpoint]:
        return self.endpoints.get(model_id, [])

    def endpoint_parameters(self, endpoint: Endpoint) -> list[str]:
        if endpoint.supported_parameters is not None:
            return endpoint.supported_parameters
        return self.models[endpoint.model].supported_parameters

    def parameter_set(self, endpoint: Endpoint) -> frozenset[str]:
        found = self.parameter_sets.get(endpoint.key)
        if found is None:  # an endpoint built outside the catalog (tests, config)
            found = frozenset(self.endpoint_parameters(endpoint))
        return found
