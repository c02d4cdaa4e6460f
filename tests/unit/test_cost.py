"""price_usage: exact Decimal costs from the catalog's endpoint prices."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest

from switchyard.accounting.cost import affordable_output, max_cost, price_usage
from switchyard.catalog import Catalog, Pricing, load_catalog
from switchyard.wire.chat import CompletionTokensDetails, CostDetails, PromptTokensDetails, Usage
from switchyard.wire.codec import encode

D = Decimal


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def pricing(catalog: Catalog, model: str, provider: str = "openai") -> Pricing:
    (endpoint,) = [e for e in catalog.endpoints_for(model) if e.provider == provider]
    return endpoint.pricing


def usage(
    prompt: int,
    completion: int,
    *,
    cached: int = 0,
    written: int | None = None,
    reasoning: int = 0,
) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(
            cached_tokens=cached,
            cache_write_tokens=msgspec.UNSET if written is None else written,
        ),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning),
    )


def details(u: Usage) -> CostDetails:
    assert isinstance(u.cost_details, CostDetails)
    return u.cost_details


def assert_split(u: Usage, prompt: Decimal, completion: Decimal) -> None:
    d = details(u)
    assert d.upstream_inference_prompt_cost == prompt
    assert d.upstream_inference_completions_cost == completion
    assert d.upstream_inference_prompt_cost + d.upstream_inference_completions_cost == u.cost
    assert d.upstream_inference_cost is None
    assert u.is_byok is False


def test_gpt4o_prompt_and_completion(catalog: Catalog) -> None:
    # 1000 x $2.50/M + 500 x $10/M = 0.0025 + 0.005
    u = price_usage(usage(1000, 500), pricing(catalog, "openai/gpt-4o"))
    assert u.cost == D("0.0075")
    assert str(u.cost) == "0.0075"
    assert_split(u, D("0.0025"), D("0.005"))


def test_returns_the_same_usage_object(catalog: Catalog) -> None:
    u = usage(1, 1)
    assert price_usage(u, pricing(catalog, "openai/gpt-4o")) is u


def test_gpt4o_cached_tokens_at_cache_read_price(catalog: Catalog) -> None:
    # 600 x 0.0000025 + 400 x 0.00000125 = 0.0015 + 0.0005
    u = price_usage(usage(1000, 500, cached=400), pricing(catalog, "openai/gpt-4o"))
    assert u.cost == D("0.007")
    assert_split(u, D("0.002"), D("0.005"))


def test_cached_tokens_without_cache_price_cost_full_prompt_price(catalog: Catalog) -> None:
    # gpt-4-turbo has no input_cache_read price: cached tokens are billed as prompt tokens.
    u = price_usage(usage(1000, 500, cached=400), pricing(catalog, "openai/gpt-4-turbo"))
    assert u.cost == D("0.025")  # 1000 x 0.00001 + 500 x 0.00003
    assert_split(u, D("0.01"), D("0.015"))


def test_gpt4o_with_two_images(catalog: Catalog) -> None:
    # 0.0025 + 2 x 0.003613 = 0.009726 prompt; 0.005 completion
    u = price_usage(usage(1000, 500), pricing(catalog, "openai/gpt-4o"), images=2)
    assert u.cost == D("0.014726")
    assert_split(u, D("0.009726"), D("0.005"))


def test_azure_prices_equal_openai(catalog: Catalog) -> None:
    a = price_usage(usage(1234, 567, cached=200), pricing(catalog, "openai/gpt-4o", "azure"))
    b = price_usage(usage(1234, 567, cached=200), pricing(catalog, "openai/gpt-4o", "openai"))
    assert a.cost == b.cost


@pytest.mark.parametrize(
    ("model", "prompt", "completion", "expected"),
    [
        # $5/M in, $15/M out
        ("openai/gpt-4o-2024-05-13", 1000, 500, D("0.0125")),
        # $0.15/M in, $0.60/M out
        ("openai/gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000, D("0.75")),
        ("openai/gpt-4o-mini-2024-07-18", 2000, 1000, D("0.0009")),
        # $10/M in, $30/M out
        ("openai/gpt-4-turbo", 1_000_000, 1_000_000, D("40")),
        ("openai/gpt-4o-2024-11-20", 3, 7, D("0.0000775")),
    ],
)
def test_seed_model_prices(
    catalog: Catalog, model: str, prompt: int, completion: int, expected: Decimal
) -> None:
    u = price_usage(usage(prompt, completion), pricing(catalog, model))
    assert u.cost == expected


def test_integral_cost_has_no_exponent(catalog: Catalog) -> None:
    u = price_usage(usage(1_000_000, 1_000_000), pricing(catalog, "openai/gpt-4-turbo"))
    assert str(u.cost) == "40"
    assert json.loads(encode(u))["cost"] == 40


def test_free_local_model(catalog: Catalog) -> None:
    u = price_usage(usage(500, 200), pricing(catalog, "local/smollm2-135m-instruct", "local"))
    assert u.cost == 0
    assert_split(u, D(0), D(0))
    assert json.loads(encode(u))["cost"] == 0


def test_request_price() -> None:
    p = Pricing(prompt=D("0.000001"), completion=D("0.000002"), request=D("0.005"))
    u = price_usage(usage(100, 50), p)
    # 0.0001 + 0.005 (the request fee counts on the prompt side) ; 0.0001
    assert u.cost == D("0.0052")
    assert_split(u, D("0.0051"), D("0.0001"))


def test_request_price_applies_with_zero_tokens() -> None:
    u = price_usage(usage(0, 0), Pricing(request=D("0.02")))
    assert u.cost == D("0.02")


def test_cache_write_tokens() -> None:
    p = Pricing(
        prompt=D("0.000003"),
        completion=D("0.000015"),
        input_cache_read=D("0.0000003"),
        input_cache_write=D("0.00000375"),
    )
    u = price_usage(usage(1000, 100, cached=200, written=300), p)
    # 500 x 0.000003 + 200 x 0.0000003 + 300 x 0.00000375 = 0.0015 + 0.00006 + 0.001125
    assert_split(u, D("0.002685"), D("0.0015"))
    assert u.cost == D("0.004185")


def test_reasoning_tokens_at_reasoning_price() -> None:
    p = Pricing(prompt=D("0.000001"), completion=D("0.000004"), internal_reasoning=D("0.000002"))
    u = price_usage(usage(0, 1000, reasoning=600), p)
    # 400 x 0.000004 + 600 x 0.000002
    assert_split(u, D(0), D("0.0028"))


def test_reasoning_tokens_without_reasoning_price_are_completion_tokens() -> None:
    p = Pricing(completion=D("0.000004"))
    assert price_usage(usage(0, 1000, reasoning=600), p).cost == D("0.004")


def test_missing_details_mean_no_cache_and_no_reasoning(catalog: Catalog) -> None:
    u = Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500)
    assert price_usage(u, pricing(catalog, "openai/gpt-4o")).cost == D("0.0075")


def test_cost_is_exact_for_awkward_numbers(catalog: Catalog) -> None:
    # 123457 x 0.00000015 + 98765 x 0.0000006 = 0.01851855 + 0.059259
    u = price_usage(usage(123_457, 98_765), pricing(catalog, "openai/gpt-4o-mini-2024-07-18"))
    assert u.cost == D("0.07777755")
    assert_split(u, D("0.01851855"), D("0.059259"))


def test_cost_encodes_as_exact_json_number(catalog: Catalog) -> None:
    u = price_usage(usage(1000, 500, cached=400), pricing(catalog, "openai/gpt-4o"))
    raw = encode(u)
    assert b'"cost":0.007,' in raw
    assert b'"upstream_inference_prompt_cost":0.002' in raw


def test_tiny_costs_keep_every_digit_in_json(catalog: Catalog) -> None:
    u = price_usage(usage(0, 1), pricing(catalog, "openai/gpt-4o-mini-2024-07-18"))
    assert u.cost == D("0.0000006")
    decoded = msgspec.json.Decoder(dict[str, object], float_hook=D).decode(encode(u))
    assert decoded["cost"] == D("0.0000006")


def test_gemini_2_5_pro_prompt_at_the_threshold_is_the_base_tier(catalog: Catalog) -> None:
    p = pricing(catalog, "google/gemini-2.5-pro", "google-ai-studio")
    u = price_usage(usage(200_000, 1000, cached=100_000), p)
    # 100,000 x 0.00000125 + 100,000 x 0.000000125 ; 1,000 x 0.00001
    assert_split(u, D("0.1375"), D("0.01"))


def test_gemini_2_5_pro_long_prompt_bills_the_whole_request_at_the_long_tier(
    catalog: Catalog,
) -> None:
    p = pricing(catalog, "google/gemini-2.5-pro", "google-ai-studio")
    u = price_usage(usage(200_001, 1000, cached=100_000), p)
    # 100,001 x 0.0000025 + 100,000 x 0.00000025 ; 1,000 x 0.000015
    assert_split(u, D("0.2750025"), D("0.015"))


def test_long_context_tier_keeps_base_prices_it_does_not_name() -> None:
    p = msgspec.convert(
        {
            "prompt": "0.000001",
            "completion": "0.000002",
            "internal_reasoning": "0.000003",
            "long_context": {"above": 10, "prompt": "0.000004"},
        },
        Pricing,
    )
    long = p.for_prompt(11)
    assert (long.prompt, long.completion, long.internal_reasoning) == (
        D("0.000004"),
        D("0.000002"),
        D("0.000003"),
    )
    assert long.long_context is None
    assert p.for_prompt(10) is p


def test_long_context_tier_prices_are_checked() -> None:
    with pytest.raises(msgspec.ValidationError, match="non-negative"):
        msgspec.convert({"long_context": {"above": 10, "prompt": "-1"}}, Pricing)
    with pytest.raises(msgspec.ValidationError, match="above"):
        msgspec.convert({"long_context": {"above": 0}}, Pricing)


def test_reservation_and_affordable_output_use_the_long_tier(catalog: Catalog) -> None:
    p = pricing(catalog, "google/gemini-2.5-pro", "google-ai-studio")
    # 300,000 x 0.0000025 + 1,000 x 0.000015 (not 0.000001250 and 0.00001)
    assert max_cost(p, 300_000, 1000, 0) == D("0.765")
    assert affordable_output(D("0.765"), p, 300_000, 0) == 1000
