"""The price of one generation, exactly, from the serving endpoint's prices."""

from __future__ import annotations

from decimal import Decimal

from switchyard.catalog import Pricing
from switchyard.wire.chat import (
    CompletionTokensDetails,
    CostDetails,
    PromptTokensDetails,
    Usage,
)

ZERO = Decimal(0)


def price_usage(usage: Usage, pricing: Pricing, *, images: int = 0) -> Usage:
    """Fill ``usage.cost`` and ``usage.cost_details`` in place, and return ``usage``.

    Cached prompt tokens are billed at the cache-read price and cache writes at the
    cache-write price where the endpoint has them; reasoning tokens at the reasoning price
    where it differs from the completion price. A long prompt is billed at the endpoint's
    long-context prices, for the whole request, as the vendors bill it.
    """
    pricing = pricing.for_prompt(usage.prompt_tokens)
    cached = written = reasoning = 0
    prompt_details = usage.prompt_tokens_details
    if isinstance(prompt_details, PromptTokensDetails):
        cached = prompt_details.cached_tokens
        if isinstance(prompt_details.cache_write_tokens, int):
            written = prompt_details.cache_write_tokens
    completion_details = usage.completion_tokens_details
    if isinstance(completion_details, CompletionTokensDetails):
        reasoning = completion_details.reasoning_tokens

    read_price = (
        pricing.input_cache_read if pricing.input_cache_read is not None else pricing.prompt
    )
    write_price = (
        pricing.input_cache_write if pricing.input_cache_write is not None else pricing.prompt
    )
    uncached = max(usage.prompt_tokens - cached - written, 0)
    prompt_cost = (
        uncached * pricing.prompt
        + cached * read_price
        + written * write_price
        + images * pricing.image
        + pricing.request
    )
    reasoning_price = (
        pricing.internal_reasoning if pricing.internal_reasoning is not None else pricing.completion
    )
    completion_cost = (usage.completion_tokens - reasoning) * pricing.completion + (
        reasoning * reasoning_price
    )
    total = prompt_cost + completion_cost
    usage.cost = _plain(total)
    usage.is_byok = False
    usage.cost_details = CostDetails(
        upstream_inference_cost=None,
        upstream_inference_prompt_cost=_plain(prompt_cost),
        upstream_inference_completions_cost=_plain(completion_cost),
    )
    return usage


def _plain(value: Decimal) -> Decimal:
    """Drop trailing zeros (0.007500 -> 0.0075); tiny amounts still print as 6E-7."""
    if value == ZERO:
        return ZERO
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal


def max_cost(pricing: Pricing, prompt_tokens: int, max_output: int, images: int) -> Decimal:
    """The most a request can cost: no cache discount, every output token at the dearer of
    the completion and reasoning prices."""
    pricing = pricing.for_prompt(prompt_tokens)
    output_price = max(pricing.completion, pricing.internal_reasoning or ZERO)
    return (
        prompt_tokens * pricing.prompt
        + images * pricing.image
        + pricing.request
        + max_output * output_price
    )


def affordable_output(available: Decimal, pricing: Pricing, prompt_tokens: int, images: int) -> int:
    """How many output tokens ``available`` USD pays for after the prompt (0 if none)."""
    pricing = pricing.for_prompt(prompt_tokens)
    fixed = prompt_tokens * pricing.prompt + images * pricing.image + pricing.request
    output_price = max(pricing.completion, pricing.internal_reasoning or ZERO)
    if available <= fixed:
        return 0
    if not output_price:
        return 2**31
    return int((available - fixed) / output_price)


def cache_discount(usage: Usage, pricing: Pricing) -> Decimal:
    """What cached prompt tokens saved against the full prompt price."""
    pricing = pricing.for_prompt(usage.prompt_tokens)
    details = usage.prompt_tokens_details
    if not isinstance(details, PromptTokensDetails) or pricing.input_cache_read is None:
        return ZERO
    return max(details.cached_tokens * (pricing.prompt - pricing.input_cache_read), ZERO)
