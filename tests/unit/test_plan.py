"""plan(): which endpoints may serve a request, and in which order."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from switchyard.catalog import Catalog, ModelSpec, load_catalog
from switchyard.errors import InvalidRequest, NoEndpoint, NotFound
from switchyard.routing.plan import Plan, plan, prompt_upper_bound
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request

GPT4O = "openai/gpt-4o"
GPT4O_0513 = "openai/gpt-4o-2024-05-13"
MINI = "openai/gpt-4o-mini-2024-07-18"
TURBO = "openai/gpt-4-turbo"
LOCAL = "local/smollm2-135m-instruct"
ALL = frozenset({"openai", "azure", "local"})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def request(**fields: Any) -> ChatRequest:
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


def image_request(**fields: Any) -> ChatRequest:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    return request(messages=[{"role": "user", "content": [part]}], **fields)


class CountingStub:
    """A count_prompt that records each call and returns a fixed count."""

    def __init__(self, tokens: int | None) -> None:
        self.tokens = tokens
        self.calls: list[str] = []

    def __call__(self, model: ModelSpec) -> int | None:
        self.calls.append(model.id)
        return self.tokens


def never_called(model: ModelSpec) -> int | None:
    raise AssertionError(f"count_prompt called for {model.id}")


def keys(result: Plan) -> list[str]:
    return [c.endpoint.key for c in result.candidates]


def run(
    req: ChatRequest,
    catalog: Catalog,
    available: frozenset[str] = ALL,
    count: Callable[[ModelSpec], int | None] = never_called,
) -> Plan:
    return plan(req, catalog, available, count)


# --- model resolution -----------------------------------------------------------------------


def test_single_model_gets_both_providers(catalog: Catalog) -> None:
    result = run(request(model=GPT4O), catalog)
    assert sorted(keys(result)) == [f"{GPT4O}@azure", f"{GPT4O}@openai"]
    assert all(c.model.id == GPT4O for c in result.candidates)
    assert result.excluded == {}


def test_unknown_model(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        run(request(model="acme/nope"), catalog)
    assert info.value.status == 400
    assert info.value.field == "model"
    assert "acme/nope" in info.value.message


def test_unknown_model_in_models_list(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        run(request(model=GPT4O, models=[MINI, "acme/nope"]), catalog)
    assert info.value.metadata == {"field": "models[1]"}


def test_no_model_at_all(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        run(request(), catalog)
    assert info.value.field == "model"


def test_models_fallback_order_primary_first_deduplicated(catalog: Catalog) -> None:
    result = run(request(model=TURBO, models=[MINI, TURBO, LOCAL, MINI]), catalog)
    assert [c.model.id for c in result.candidates] == [TURBO, TURBO, MINI, MINI, LOCAL]
    # Within a model, equally priced endpoints are load balanced: either may come first.
    got = keys(result)
    assert sorted(got[:2]) == [f"{TURBO}@azure", f"{TURBO}@openai"]
    assert sorted(got[2:4]) == [f"{MINI}@azure", f"{MINI}@openai"]
    assert got[4] == f"{LOCAL}@local"


def test_models_list_without_model(catalog: Catalog) -> None:
    result = run(request(models=[LOCAL, GPT4O]), catalog)
    assert [c.model.id for c in result.candidates] == [LOCAL, GPT4O, GPT4O]


# --- availability -----------------------------------------------------------------------------


def test_unconfigured_provider_is_excluded(catalog: Catalog) -> None:
    result = run(request(model=GPT4O), catalog, frozenset({"azure"}))
    assert keys(result) == [f"{GPT4O}@azure"]
    assert result.excluded == {f"{GPT4O}@openai": "provider_not_configured"}


def test_no_configured_provider_is_no_endpoint(catalog: Catalog) -> None:
    with pytest.raises(NoEndpoint) as info:
        run(request(model=GPT4O, models=[TURBO]), catalog, frozenset({"local"}))
    assert info.value.status == 503
    excluded = (info.value.metadata or {})["excluded"]
    assert excluded == {
        f"{GPT4O}@openai": "provider_not_configured",
        f"{GPT4O}@azure": "provider_not_configured",
        f"{TURBO}@openai": "provider_not_configured",
        f"{TURBO}@azure": "provider_not_configured",
    }


def test_fallback_model_serves_when_primary_has_no_provider(catalog: Catalog) -> None:
    result = run(request(model=GPT4O, models=[LOCAL]), catalog, frozenset({"local"}))
    assert keys(result) == [f"{LOCAL}@local"]
    assert set(result.excluded) == {f"{GPT4O}@openai", f"{GPT4O}@azure"}


# --- modalities -------------------------------------------------------------------------------


def test_image_to_text_only_model_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as info:
        run(image_request(model=LOCAL), catalog)
    assert info.value.status == 404
    assert "image" in info.value.message
    assert (info.value.metadata or {})["excluded"] == {f"{LOCAL}@local": "input_modalities"}


def test_image_falls_back_to_vision_model(catalog: Catalog) -> None:
    result = run(image_request(model=LOCAL, models=[GPT4O]), catalog)
    assert sorted(keys(result)) == [f"{GPT4O}@azure", f"{GPT4O}@openai"]
    assert result.excluded == {f"{LOCAL}@local": "input_modalities"}


def test_file_part_to_model_without_file_input(catalog: Catalog) -> None:
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:..."}}
    req = request(model=TURBO, messages=[{"role": "user", "content": [part]}])
    with pytest.raises(NotFound):
        run(req, catalog)
    # gpt-4o takes files.
    req = request(model=GPT4O, messages=[{"role": "user", "content": [part]}])
    assert len(run(req, catalog).candidates) == 2


# --- output and context limits ----------------------------------------------------------------


def test_max_tokens_above_endpoint_limit_excludes_it(catalog: Catalog) -> None:
    # gpt-4o-2024-05-13 endpoints allow 4096 output tokens; gpt-4o allows 16384.
    result = run(request(model=GPT4O_0513, models=[GPT4O], max_tokens=5000), catalog)
    assert sorted(keys(result)) == [f"{GPT4O}@azure", f"{GPT4O}@openai"]
    assert result.excluded == {
        f"{GPT4O_0513}@openai": "max_tokens",
        f"{GPT4O_0513}@azure": "max_tokens",
    }


def test_max_tokens_at_endpoint_limit_is_allowed(catalog: Catalog) -> None:
    assert len(run(request(model=GPT4O_0513, max_tokens=4096), catalog).candidates) == 2


def test_max_completion_tokens_is_checked_too(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        run(request(model=GPT4O_0513, max_completion_tokens=4097), catalog)
    assert info.value.field == "max_tokens"


def test_max_tokens_above_every_endpoint(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        run(request(model=GPT4O, max_tokens=20000), catalog)
    assert info.value.status == 400
    assert info.value.field == "max_tokens"


LONG = "word " * 40_000  # 200,000 bytes: over the 128,000-token context by the cheap bound


def test_prompt_too_long_for_context(catalog: Catalog) -> None:
    stub = CountingStub(1_000_000)
    req = request(model=GPT4O, messages=[{"role": "user", "content": LONG}])
    with pytest.raises(InvalidRequest) as info:
        run(req, catalog, count=stub)
    assert info.value.status == 400
    assert info.value.field == "messages"
    excluded = (info.value.metadata or {})["excluded"]
    assert excluded[f"{GPT4O}@openai"] == "context_length"
    # Counted once per model, not once per endpoint.
    assert stub.calls == [GPT4O]


def test_long_prompt_that_counts_small_enough_is_kept(catalog: Catalog) -> None:
    stub = CountingStub(50_000)
    req = request(model=GPT4O, messages=[{"role": "user", "content": LONG}])
    assert len(run(req, catalog, count=stub).candidates) == 2
    assert stub.calls == [GPT4O]


def test_prompt_plus_output_over_context(catalog: Catalog) -> None:
    stub = CountingStub(120_000)
    req = request(model=GPT4O, max_tokens=10_000, messages=[{"role": "user", "content": LONG}])
    with pytest.raises(InvalidRequest) as info:
        run(req, catalog, count=stub)
    assert info.value.field == "messages"
    excluded = (info.value.metadata or {})["excluded"]
    assert excluded[f"{GPT4O}@azure"] == "context_length"


def test_long_prompt_falls_back_to_model_that_fits(catalog: Catalog) -> None:
    counts = {GPT4O: 200_000, MINI: 100_000}
    calls: list[str] = []

    def count(model: ModelSpec) -> int | None:
        calls.append(model.id)
        return counts[model.id]

    req = request(model=GPT4O, models=[MINI], messages=[{"role": "user", "content": LONG}])
    result = run(req, catalog, count=count)
    assert sorted(keys(result)) == [f"{MINI}@azure", f"{MINI}@openai"]
    assert calls == [GPT4O, MINI]


def test_native_count_keeps_endpoint(catalog: Catalog) -> None:
    # None: the serving provider (llama.cpp) counts for itself; the planner cannot exclude.
    stub = CountingStub(None)
    req = request(model=LOCAL, messages=[{"role": "user", "content": LONG}])
    assert keys(run(req, catalog, count=stub)) == [f"{LOCAL}@local"]
    assert stub.calls == [LOCAL]


def test_short_prompt_is_never_counted(catalog: Catalog) -> None:
    stub = CountingStub(10**9)  # would exclude everything if it were consulted
    req = request(model=GPT4O, models=[MINI, LOCAL], max_tokens=1000)
    result = run(req, catalog, count=stub)
    assert len(result.candidates) == 5
    assert stub.calls == []


def test_upper_bound_is_at_least_the_prompt_bytes() -> None:
    text = "héllo wörld " * 10
    bound = prompt_upper_bound(request(messages=[{"role": "user", "content": text}]))
    assert bound >= len(text.encode())
    tool = {"type": "function", "function": {"name": "f", "description": "d" * 500}}
    with_tools = request(messages=[{"role": "user", "content": text}], tools=[tool])
    assert prompt_upper_bound(with_tools) >= bound + 500


def test_many_images_over_context_are_rejected(catalog: Catalog) -> None:
    part = {"type": "image_url", "image_url": {"url": "https://a.b/c.png", "detail": "high"}}
    req = request(model=GPT4O, messages=[{"role": "user", "content": [part] * 200}])
    # 200 images x 765 tokens + framing = 153,007 tokens with o200k_base; context is 128,000.
    stub = CountingStub(153_007)
    with pytest.raises(InvalidRequest) as info:
        run(req, catalog, count=stub)
    assert info.value.field == "messages"


# --- ordering -------------------------------------------------------------------------------


def _provider(slug: str) -> dict[str, Any]:
    return {"slug": slug, "name": slug.title(), "protocol": "openai", "base_url": "https://x"}


def _endpoint(
    provider: str, prompt: str, completion: str, request_price: str = "0"
) -> dict[str, Any]:
    return {
        "model": GPT4O,
        "provider": provider,
        "upstream_model": "gpt-4o",
        "context_length": 128000,
        "pricing": {"prompt": prompt, "completion": completion, "request": request_price},
    }


@pytest.fixture(scope="module")
def priced_catalog() -> Catalog:
    return load_catalog(
        extra={
            "providers": [_provider("pricey"), _provider("cheapco"), _provider("midco")],
            "endpoints": [
                _endpoint("pricey", "0.00002", "0.00004"),
                _endpoint("cheapco", "0.000001", "0.000002"),
                _endpoint("midco", "0.000001", "0.000002", request_price="0.01"),
            ],
        }
    )


def test_candidates_ordered_cheapest_first(priced_catalog: Catalog) -> None:
    available = frozenset({"openai", "azure", "pricey", "cheapco", "midco"})
    # sort=price: load balancing off, strictly cheapest first.
    result = run(request(model=GPT4O, provider={"sort": "price"}), priced_catalog, available)
    assert keys(result) == [
        f"{GPT4O}@cheapco",
        f"{GPT4O}@midco",  # same token prices as cheapco; the request price breaks the tie
        f"{GPT4O}@openai",  # openai and azure tie exactly: file order is kept
        f"{GPT4O}@azure",
        f"{GPT4O}@pricey",
    ]


def test_model_order_beats_price(priced_catalog: Catalog) -> None:
    # Cheapest first within a model; the models themselves stay in the order asked.
    available = frozenset({"openai", "cheapco", "local"})
    result = run(
        request(model=TURBO, models=[LOCAL, GPT4O], provider={"sort": "price"}),
        priced_catalog,
        available,
    )
    assert keys(result) == [
        f"{TURBO}@openai",
        f"{LOCAL}@local",
        f"{GPT4O}@cheapco",
        f"{GPT4O}@openai",
    ]


def test_max_prompt_tokens_limits_the_prompt_not_the_output(catalog: Catalog) -> None:
    capped = load_catalog(
        extra={
            "endpoints": [
                {
                    "model": GPT4O,
                    "provider": "openai",
                    "tag": "openai/short",
                    "upstream_model": "gpt-4o",
                    "context_length": 128000,
                    "max_prompt_tokens": 1000,
                    "pricing": {"prompt": "0.0000025", "completion": "0.00001"},
                }
            ]
        }
    )
    long_prompt = request(model=GPT4O, messages=[{"role": "user", "content": "word " * 2000}])
    result = run(long_prompt, capped, count=lambda model: 2005)
    assert result.excluded == {f"{GPT4O}@openai/short": "context_length"}
    assert f"{GPT4O}@openai" in keys(result)
    short = run(request(model=GPT4O), capped)
    assert f"{GPT4O}@openai/short" in keys(short)
