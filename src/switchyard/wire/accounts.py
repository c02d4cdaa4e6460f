"""Key, credit, generation and activity shapes (OpenRouter spec, plus the fields the official
openrouter SDK requires beyond it). Money fields are Decimal USD, encoded as JSON numbers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

# --- requests -----------------------------------------------------------------------------

Money = Decimal  # non-negative and finite: checked in __post_init__ (msgspec bounds are numeric)


# Money is stored as 64-bit integer picodollars, which end a little above 9.2 million USD.
MAX_USD = Decimal(1_000_000)


def _check_money(name: str, value: object) -> None:
    if isinstance(value, Decimal) and (not value.is_finite() or value < 0 or value > MAX_USD):
        # The " - at `$.x`" suffix is how msgspec names a path; the codec lifts it into
        # the error's metadata.field.
        raise ValueError(f"`{name}` must be a number from 0 to {MAX_USD} (USD) - at `$.{name}`")


KeyName = Annotated[str, Meta(min_length=1, max_length=200)]


class CreateKeyRequest(Struct, forbid_unknown_fields=False):
    name: KeyName
    limit: Money | None = None
    limit_reset: Literal["daily", "weekly", "monthly"] | None = None
    include_byok_in_limit: bool = False
    expires_at: dt.datetime | None = None
    creator_user_id: str | None = None
    workspace_id: str | None = None

    def __post_init__(self) -> None:
        _check_money("limit", self.limit)


class UpdateKeyRequest(Struct):
    name: KeyName | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET
    limit: Money | None | UnsetType = UNSET
    limit_reset: Literal["daily", "weekly", "monthly"] | None | UnsetType = UNSET
    include_byok_in_limit: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_money("limit", self.limit)


# --- responses ----------------------------------------------------------------------------


class KeyUsageFields(Struct, kw_only=True):
    usage: Decimal
    usage_daily: Decimal
    usage_weekly: Decimal
    usage_monthly: Decimal
    byok_usage: Decimal = Decimal(0)
    byok_usage_daily: Decimal = Decimal(0)
    byok_usage_weekly: Decimal = Decimal(0)
    byok_usage_monthly: Decimal = Decimal(0)
    limit: Decimal | None
    limit_remaining: Decimal | None
    limit_reset: str | None
    include_byok_in_limit: bool
    expires_at: str | None
    creator_user_id: str | None = None
    workspace_id: str


class KeyData(KeyUsageFields, kw_only=True):
    hash: str
    name: str
    label: str
    disabled: bool
    created_at: str
    updated_at: str | None
    external_user: str | None = None
    last_used_at: str | None = None


class RateLimit(Struct):
    interval: str
    note: str
    requests: int


class FreeModelDailyRequests(Struct):
    limit: int
    remaining: int
    used: int


class CurrentKeyData(KeyUsageFields, kw_only=True):
    label: str
    is_management_key: bool
    is_provisioning_key: bool = False
    is_free_tier: bool = False
    rate_limit: RateLimit
    allowed_data_regions: list[str]
    budgets: list[dict[str, Any]]
    effective_budget: dict[str, Any] | None = None
    free_model_daily_requests: FreeModelDailyRequests
    organization_id: str | None = None


class KeyEnvelope(Struct):
    data: KeyData


class CreatedKeyEnvelope(Struct):
    data: KeyData
    key: str


class KeysEnvelope(Struct):
    data: list[KeyData]


class CurrentKeyEnvelope(Struct):
    data: CurrentKeyData


class Deleted(Struct):
    deleted: bool


class Credits(Struct):
    total_credits: Decimal
    total_usage: Decimal


class CreditsEnvelope(Struct):
    data: Credits


class ProviderResponseOut(Struct):
    status: int | None
    endpoint_id: str | None = None
    latency: float | None = None
    model_permaslug: str | None = None
    provider_name: str | None = None
    is_byok: bool = False


class GenerationData(Struct, kw_only=True):
    id: str
    created_at: str
    model: str
    provider_name: str | None
    api_type: str | None = "completions"
    app_id: int | None = None
    origin: str
    http_referer: str | None
    external_user: str | None
    user_agent: str | None = None
    latency: float | None
    generation_time: float | None
    moderation_latency: float | None = None
    tokens_prompt: int | None
    tokens_completion: int | None
    native_tokens_prompt: int | None
    native_tokens_completion: int | None
    native_tokens_cached: int | None
    native_tokens_reasoning: int | None
    native_tokens_completion_images: int | None = None
    num_media_prompt: int | None
    num_media_completion: int | None = None
    num_input_audio_prompt: int | None = None
    num_fetches: int | None = None
    num_search_results: int | None = None
    total_cost: Decimal
    usage: Decimal
    upstream_inference_cost: Decimal | None = None
    cache_discount: Decimal | None
    is_byok: bool = False
    streamed: bool | None
    cancelled: bool | None
    finish_reason: str | None
    native_finish_reason: str | None
    data_region: str = "global"
    preset_id: str | None = None
    router: str | None = None
    service_tier: str | None = None
    upstream_id: str | None = None
    web_search_engine: str | None = None
    workspace_id: str | None
    session_id: str | None
    app_title: str | None = None
    provider_responses: list[ProviderResponseOut] | None


class GenerationEnvelope(Struct):
    data: GenerationData


class ActivityItem(Struct):
    date: str
    model: str
    model_permaslug: str
    endpoint_id: str
    provider_name: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    usage: Decimal
    byok_usage_inference: Decimal
    workspace_id: str


class ActivityEnvelope(Struct):
    data: list[ActivityItem]
