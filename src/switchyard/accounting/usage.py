"""Usage when a provider does not report it: counted with the model's own encoding."""

from __future__ import annotations

from switchyard import tokens
from switchyard.catalog import ModelSpec
from switchyard.wire.chat import (
    ChatRequest,
    CompletionTokensDetails,
    PromptTokensDetails,
    Usage,
)


def counted_usage(request: ChatRequest, model: ModelSpec, completion_text: str) -> Usage:
    if model.encoding == "native":
        prompt = completion = 0  # only the serving runtime knows; it always reports
    else:
        prompt = tokens.count_prompt(request, model.encoding)
        completion = tokens.count_text(completion_text, model.encoding)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=0),
    )


def normalise_usage(usage: Usage) -> Usage:
    """Always present the details objects, as OpenRouter does."""
    if not isinstance(usage.prompt_tokens_details, PromptTokensDetails):
        usage.prompt_tokens_details = PromptTokensDetails(cached_tokens=0)
    if not isinstance(usage.completion_tokens_details, CompletionTokensDetails):
        usage.completion_tokens_details = CompletionTokensDetails(reasoning_tokens=0)
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    return usage
