"""Catalog responses: OpenRouter's ``Model``, ``PublicEndpoint`` and provider shapes."""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class ArchitectureOut(Struct):
    modality: str
    input_modalities: list[str]
    output_modalities: list[str]
    tokenizer: str
    instruct_type: str | None


class TopProvider(Struct):
    context_length: int | None
    max_completion_tokens: int | None
    is_moderated: bool


class Links(Struct):
    details: str


class ModelOut(Struct):
    id: str
    canonical_slug: str
    hugging_face_id: str | None
    name: str
    created: int
    description: str
    context_length: int
    architecture: ArchitectureOut
    pricing: dict[str, str]
    top_provider: TopProvider
    per_request_limits: dict[str, Any] | None
    supported_parameters: list[str]
    default_parameters: dict[str, Any] | None
    supported_voices: list[str] | None
    knowledge_cutoff: str | None
    expiration_date: str | None
    links: Links


class ModelsPage(Struct):
    data: list[ModelOut]
    total_count: int
    links: dict[str, str | None]


class ModelsCount(Struct):
    data: dict[str, int]  # {"count": n}


class ModelEnvelope(Struct):
    data: ModelOut


class Percentiles(Struct):
    p50: float
    p75: float
    p90: float
    p99: float


class ToolChoiceSupport(Struct):
    auto: bool
    function: bool
    none: bool
    required: bool


class EndpointOut(Struct):
    name: str
    model_id: str
    model_name: str
    context_length: int
    pricing: dict[str, str]
    provider_name: str
    tag: str
    quantization: str
    max_completion_tokens: int | None
    max_prompt_tokens: int | None
    supported_parameters: list[str]
    status: int
    uptime_last_5m: float | None
    uptime_last_30m: float | None
    uptime_last_1d: float | None
    latency_last_30m: Percentiles | None
    throughput_last_30m: Percentiles | None
    supports_implicit_caching: bool
    # Fields the official openrouter SDK requires beyond the published OpenAPI document.
    supports_tool_choice: ToolChoiceSupport
    native_tools: dict[str, Any]
    service_tier: str | None
    supports_diarization: bool


class EndpointsData(Struct):
    id: str
    name: str
    created: int
    description: str
    architecture: ArchitectureOut
    endpoints: list[EndpointOut]


class EndpointsEnvelope(Struct):
    data: EndpointsData


class ProviderOut(Struct):
    name: str
    slug: str
    privacy_policy_url: str | None
    terms_of_service_url: str | None
    status_page_url: str | None
    headquarters: str | None
    datacenters: list[str] | None


class ProvidersEnvelope(Struct):
    data: list[ProviderOut]
