"""plan() with provider preferences, on the built-in catalog plus a few extra providers."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from switchyard.catalog import Catalog, ModelSpec, load_catalog
from switchyard.errors import InvalidRequest, NotFound
from switchyard.routing.plan import Plan, plan
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request

GPT4O = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini-2024-07-18"
LOCAL = "local/smollm2-135m-instruct"
EVERYONE = frozenset({"openai", "azure", "local", "trainer", "keeper", "clean"})


def _provider(slug: str, **policy: bool) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": f"{slug.title()} Inc",
        "protocol": "openai",
        "base_url": "https://x",
        "data_policy": policy,
    }


def _endpoint(provider: str, prompt: str, quantization: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": GPT4O,
        "provider": provider,
        "upstream_model": "gpt-4o",
        "context_length": 128000,
        "max_completion_tokens": 16384,
        "quantization": quantization,
        "pricing": {"prompt": prompt, "completion": prompt},
        **extra,
    }


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(
        extra={
            "providers": [
                _provider("trainer", training=True),
                _provider("keeper", retains_prompts=True),
                _provider("clean"),
            ],
            "endpoints": [
                _endpoint("trainer", "0.000001", "fp8"),
                _endpoint("keeper", "0.000002", "bf16"),
                _endpoint("clean", "0.000003", "fp16", supported_parameters=["temperature"]),
                _endpoint("azure", "0.000004", "fp16", tag="azure/eu"),
            ],
        }
    )


def request(**fields: Any) -> ChatRequest:
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


def never(model: ModelSpec) -> int | None:
    raise AssertionError("short prompts are never counted")


def run(req: ChatRequest, catalog: Catalog, available: frozenset[str] = EVERYONE) -> Plan:
    return plan(req, catalog, available, never, None, None, random.Random(0))


def served(result: Plan) -> set[str]:
    return {c.endpoint.tag or c.endpoint.provider for c in result.candidates}


ALL_GPT4O = {"openai", "azure", "trainer", "keeper", "clean", "azure/eu"}


def test_no_preferences_keeps_every_endpoint(catalog: Catalog) -> None:
    assert served(run(request(model=GPT4O), catalog)) == ALL_GPT4O
    assert served(run(request(model=GPT4O, provider=None), catalog)) == ALL_GPT4O


def test_data_collection_deny_drops_training_providers(catalog: Catalog) -> None:
    result = run(request(model=GPT4O, provider={"data_collection": "deny"}), catalog)
    assert served(result) == ALL_GPT4O - {"trainer"}
    assert result.excluded == {f"{GPT4O}@trainer": "data_collection"}
    allow = run(request(model=GPT4O, provider={"data_collection": "allow"}), catalog)
    assert served(allow) == ALL_GPT4O


def test_zdr_drops_providers_that_retain_prompts(catalog: Catalog) -> None:
    result = run(request(model=GPT4O, provider={"zdr": True}), catalog)
    # openai and azure (both variants) keep prompts for 30 days in the built-in data.
    assert served(result) == {"trainer", "clean"}
    assert set(result.excluded.values()) == {"zdr"}
    assert set(result.excluded) == {
        f"{GPT4O}@openai",
        f"{GPT4O}@azure",
        f"{GPT4O}@azure/eu",
        f"{GPT4O}@keeper",
    }


def test_quantizations(catalog: Catalog) -> None:
    result = run(request(model=GPT4O, provider={"quantizations": ["fp8", "fp16"]}), catalog)
    assert served(result) == {"trainer", "clean", "azure/eu"}
    assert result.excluded[f"{GPT4O}@openai"] == "quantizations"  # "unknown" is not listed
    unknown = run(request(model=GPT4O, provider={"quantizations": ["unknown"]}), catalog)
    assert served(unknown) == {"openai", "azure"}


def test_only_by_display_name_and_tag(catalog: Catalog) -> None:
    result = run(request(model=GPT4O, provider={"only": ["Keeper Inc", "azure/eu"]}), catalog)
    assert served(result) == {"keeper", "azure/eu"}
    assert set(result.excluded.values()) == {"provider.only"}


def test_ignore_base_slug_drops_every_variant(catalog: Catalog) -> None:
    result = run(request(model=GPT4O, provider={"ignore": ["azure"]}), catalog)
    assert served(result) == ALL_GPT4O - {"azure", "azure/eu"}


def test_unconfigured_provider_reason_comes_first(catalog: Catalog) -> None:
    result = run(
        request(model=GPT4O, provider={"ignore": ["trainer"], "zdr": True}),
        catalog,
        frozenset({"openai", "clean"}),
    )
    assert served(result) == {"clean"}
    assert result.excluded[f"{GPT4O}@trainer"] == "provider_not_configured"
    assert result.excluded[f"{GPT4O}@openai"] == "zdr"


def test_require_parameters_drops_endpoints_lacking_one(catalog: Catalog) -> None:
    tool = [{"type": "function", "function": {"name": "f"}}]
    result = run(request(model=GPT4O, tools=tool, provider={"require_parameters": True}), catalog)
    assert served(result) == ALL_GPT4O - {"clean"}
    assert result.excluded == {f"{GPT4O}@clean": "require_parameters"}
    # Without require_parameters the same endpoint stays, after the tool-capable ones.
    loose = run(request(model=GPT4O, tools=tool, provider={"sort": "price"}), catalog)
    assert loose.candidates[-1].endpoint.provider == "clean"


def test_max_price_mixed_with_other_filters_reports_each_reason(catalog: Catalog) -> None:
    req = request(
        model=GPT4O,
        provider={"max_price": {"prompt": 1.5}, "ignore": ["trainer"], "zdr": True},
    )
    with pytest.raises(NotFound) as info:
        run(req, catalog)
    assert info.value.status == 404
    metadata = info.value.metadata or {}
    assert metadata["filters"] == {
        "provider.ignore": [f"{GPT4O}@trainer"],
        "zdr": [f"{GPT4O}@openai", f"{GPT4O}@azure", f"{GPT4O}@keeper", f"{GPT4O}@azure/eu"],
        "max_price": [f"{GPT4O}@clean"],
    }
    assert "max_price (1)" in info.value.message and "zdr (4)" in info.value.message


def test_filters_apply_to_every_fallback_model(catalog: Catalog) -> None:
    result = run(
        request(model=GPT4O, models=[MINI, LOCAL], provider={"ignore": ["azure"]}), catalog
    )
    assert {c.endpoint.provider for c in result.candidates} == {
        "openai",
        "trainer",
        "keeper",
        "clean",
        "local",
    }
    assert result.excluded[f"{MINI}@azure"] == "provider.ignore"


def test_max_tokens_over_output_limit(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        run(request(model=GPT4O, max_tokens=20_000), catalog)
    assert info.value.field == "max_tokens"


def test_variant_and_plain_model_are_one_model(catalog: Catalog) -> None:
    result = run(request(model=f"{GPT4O}:nitro", models=[GPT4O]), catalog)
    keys = [c.endpoint.key for c in result.candidates]
    assert len(keys) == len(set(keys)) == len(ALL_GPT4O)


def test_no_fallbacks_with_order_matching_nothing_is_an_error(catalog: Catalog) -> None:
    req = request(model=GPT4O, provider={"order": ["nobody"], "allow_fallbacks": False})
    with pytest.raises(NotFound) as info:
        run(req, catalog)  # not an empty plan, which the executor would report as a 503
    assert info.value.status == 404
    assert set((info.value.metadata or {})["order"]) == {"nobody"}
