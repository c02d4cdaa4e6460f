"""One generation, as recorded for /generation, activity and the key's usage counters."""

from __future__ import annotations

from typing import Any

import msgspec


class GenerationRecord(msgspec.Struct, frozen=True):
    id: str
    account_id: str
    key_hash: str
    created_at: str  # ISO 8601, UTC
    day: str  # the UTC day it counts towards
    model: str
    endpoint: str | None
    provider_name: str | None
    streamed: bool
    cancelled: bool
    finish_reason: str | None
    native_finish_reason: str | None
    latency_ms: float | None  # request start to first token (or to the response)
    generation_time_ms: float | None  # request start to the last token
    tokens_prompt: int
    tokens_completion: int
    native_tokens_cached: int
    native_tokens_reasoning: int
    num_media_prompt: int
    total_cost: int  # picodollars
    cache_discount: int  # picodollars saved by cached prompt tokens
    http_referer: str | None
    app_title: str | None
    user_id: str | None
    session_id: str | None
    provider_responses: list[dict[str, Any]]
