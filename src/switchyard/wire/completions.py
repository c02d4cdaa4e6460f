"""Legacy Completions request and response types (``POST /completions``, ``text_completion``).

OpenRouter's OpenAPI document does not describe this operation, so the shapes follow OpenAI's
legacy Completions API (``openai.types.Completion``): a streamed chunk and a whole response
share one shape. OpenRouter's additions to chat results (``provider``,
``native_finish_reason``, usage with ``cost``) are carried over, and routing fields
(``models``, ``provider``) mean what they mean for chat. Ranges reuse the chat request's, so a
bad value is reported with its field the same way on both endpoints.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from switchyard.wire.chat import (
    Bias,
    FinishReason,
    MetadataKey,
    MetadataValue,
    Penalty,
    PositiveInt,
    ProviderPreferences,
    StreamError,
    StreamOptions,
    Temperature,
    UnitInterval,
    Usage,
)

# OpenAI documents at most 5; the chat endpoint's top_logprobs allows 20, and so do we.
LogprobCount = Annotated[int, Meta(ge=0, le=20)]


class CompletionRequest(Struct):
    # A string, or OpenAI's list forms: strings, token ids, lists of token ids. msgspec
    # cannot tell several list types apart in one union, so the surface checks the items.
    prompt: str | list[Any]
    model: str | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    provider: ProviderPreferences | None | UnsetType = UNSET
    stream: bool = False
    stream_options: StreamOptions | None | UnsetType = UNSET
    max_tokens: PositiveInt | None | UnsetType = UNSET
    temperature: Temperature | None | UnsetType = UNSET
    top_p: UnitInterval | None | UnsetType = UNSET
    top_k: Annotated[int, Meta(ge=0)] | None | UnsetType = UNSET
    min_p: UnitInterval | None | UnsetType = UNSET
    top_a: UnitInterval | None | UnsetType = UNSET
    frequency_penalty: Penalty | None | UnsetType = UNSET
    presence_penalty: Penalty | None | UnsetType = UNSET
    repetition_penalty: Annotated[float, Meta(gt=0, le=2)] | None | UnsetType = UNSET
    seed: int | None | UnsetType = UNSET
    stop: str | Annotated[list[str], Meta(max_length=4)] | None | UnsetType = UNSET
    logit_bias: dict[str, Bias] | None | UnsetType = UNSET
    logprobs: LogprobCount | None | UnsetType = UNSET
    echo: bool | None | UnsetType = UNSET
    suffix: str | None | UnsetType = UNSET
    n: Annotated[int, Meta(ge=1)] | None | UnsetType = UNSET
    best_of: Annotated[int, Meta(ge=1)] | None | UnsetType = UNSET
    user: str | UnsetType = UNSET
    metadata: Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)] | UnsetType = UNSET
    session_id: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    # OpenRouter-only switches: validated for shape, passed on as for chat.
    route: Literal["fallback", "sort"] | None | UnsetType = UNSET
    transforms: list[str] | UnsetType = UNSET


class CompletionLogprobs(Struct):
    """Per generated token: its text, log probability, best alternatives and text offset."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class CompletionChoice(Struct):
    index: int
    text: str
    finish_reason: FinishReason | None = None
    native_finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class CompletionResult(Struct):
    """A whole response, or one chunk of a stream (the last carries usage and no choices)."""

    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    object: str = "text_completion"
    provider: str | UnsetType = UNSET
    system_fingerprint: str | None = None
    usage: Usage | None | UnsetType = UNSET
    error: StreamError | UnsetType = UNSET
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET
