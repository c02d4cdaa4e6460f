"""OpenAI-compatible hosts' parameter maps, applied by the shared OpenAI adapter. No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.catalog.loader import CatalogError
from switchyard.catalog.schema import ParameterMap
from switchyard.providers.openai import (
    Credentials,
    OpenAIAdapter,
    _strip_messages,
    normalise_finish,
    plan_request,
)
from switchyard.providers.registry import build_providers
from switchyard.settings import LocalModelConfig, ProviderConfig, Settings
from switchyard.upstream.client import UpstreamClient
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request

LARGE = "mistralai/mistral-large-2411"
LLAMA = "meta-llama/llama-3.3-70b-instruct"
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def endpoint(catalog: Catalog, provider: str, model: str) -> Endpoint:
    (found,) = [e for e in catalog.endpoints_for(model) if e.provider == provider]
    return found


def adapter(catalog: Catalog, provider: str) -> OpenAIAdapter:
    return OpenAIAdapter(catalog.providers[provider], Credentials("key", "https://h/v1"), catalog)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate JSON keys: {keys}"
    return dict(pairs)


def build(a: OpenAIAdapter, ep: Endpoint, *, stream: bool = False, **fields: Any) -> dict[str, Any]:
    body = {"model": ep.model, "messages": [{"role": "user", "content": "hi"}], **fields}
    request = decode_request(json.dumps(body).encode(), ChatRequest)
    upstream = a.build_request(request, ep, stream=stream)
    parsed: dict[str, Any] = json.loads(upstream.body, object_pairs_hook=_no_duplicates)
    return parsed


# --- Mistral --------------------------------------------------------------------------------


def test_mistral_renames_seed(catalog: Catalog) -> None:
    body = build(adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE), seed=7)
    assert body["random_seed"] == 7
    assert "seed" not in body


def test_mistral_renames_max_completion_tokens(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE)
    body = build(a, ep, max_completion_tokens=64)
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    # Both spellings sent: one key on the wire, with max_completion_tokens' value (the one
    # ChatRequest.output_limit honours).
    both = build(a, ep, max_completion_tokens=64, max_tokens=99)
    assert both["max_tokens"] == 64 and "max_completion_tokens" not in both
    # The old name alone passes through untouched.
    assert build(a, ep, max_tokens=99)["max_tokens"] == 99


def test_mistral_respells_required_tool_choice_only(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE)
    assert build(a, ep, tools=[TOOL], tool_choice="required")["tool_choice"] == "any"
    assert build(a, ep, tools=[TOOL], tool_choice="auto")["tool_choice"] == "auto"
    named = {"type": "function", "function": {"name": "f"}}
    assert build(a, ep, tools=[TOOL], tool_choice=named)["tool_choice"] == named


def test_mistral_drops_fields_its_schema_rejects(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE)
    body = build(
        a, ep, stream=True, user="u1", service_tier="auto", prompt_cache_key="k", temperature=0.2
    )
    assert body["stream"] is True
    for name in ("stream_options", "user", "service_tier", "prompt_cache_key"):
        assert name not in body
    assert body["temperature"] == 0.2


def test_mistral_full_body(catalog: Catalog) -> None:
    body = build(
        adapter(catalog, "mistral"),
        endpoint(catalog, "mistral", LARGE),
        seed=1,
        max_completion_tokens=5,
        tools=[TOOL],
        tool_choice="required",
        top_k=3,  # not supported by the endpoint: the gate drops it
    )
    assert body == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "mistral-large-2411",
        "stream": False,
        "tools": [TOOL],
        "random_seed": 1,
        "max_tokens": 5,
        "tool_choice": "any",
    }


# --- the supported-parameter gate comes first ------------------------------------------------


def test_renamed_field_still_needs_endpoint_support() -> None:
    extra = {
        "endpoints": [
            {
                "model": LARGE,
                "provider": "mistral",
                "upstream_model": "mistral-large-2411",
                "context_length": 131072,
                "pricing": {"prompt": "0", "completion": "0"},
                "supported_parameters": ["max_tokens", "temperature"],
            }
        ]
    }
    catalog = load_catalog(extra=extra)
    body = build(
        adapter(catalog, "mistral"),
        endpoint(catalog, "mistral", LARGE),
        seed=7,
        tools=[TOOL],
        tool_choice="required",
        min_p=0.1,
        temperature=0.5,
    )
    for name in ("seed", "random_seed", "tools", "tool_choice", "min_p"):
        assert name not in body
    assert body["temperature"] == 0.5


def test_unknown_parameters_follow_the_gate(catalog: Catalog) -> None:
    # Fields no map mentions behave exactly as on OpenAI: sent only when supported.
    a = adapter(catalog, "together")
    ep = endpoint(catalog, "together", LLAMA)
    body = build(a, ep, top_k=5, min_p=0.1, reasoning_effort="low", verbosity="low")
    assert body["top_k"] == 5 and body["min_p"] == 0.1
    assert "reasoning_effort" not in body and "verbosity" not in body


# --- Groq and OpenRouter --------------------------------------------------------------------


def test_groq_drops_rejected_fields_even_when_listed_as_supported() -> None:
    extra = {
        "endpoints": [
            {
                "model": LLAMA,
                "provider": "groq",
                "upstream_model": "llama-3.3-70b-versatile",
                "context_length": 131072,
                "pricing": {"prompt": "0", "completion": "0"},
                "supported_parameters": ["logprobs", "top_logprobs", "logit_bias", "seed"],
            }
        ]
    }
    catalog = load_catalog(extra=extra)
    body = build(
        adapter(catalog, "groq"),
        endpoint(catalog, "groq", LLAMA),
        logprobs=True,
        top_logprobs=2,
        logit_bias={"1": 5},
        seed=3,
    )
    assert body["seed"] == 3
    assert not {"logprobs", "top_logprobs", "logit_bias"} & body.keys()


def test_groq_keeps_stream_usage_and_respells_service_tier(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "groq"), endpoint(catalog, "groq", LLAMA)
    body = build(a, ep, stream=True, service_tier="default")
    assert body["stream_options"] == {"include_usage": True}
    assert body["service_tier"] == "on_demand"
    assert build(a, ep, service_tier="flex")["service_tier"] == "flex"


def test_openrouter_sends_attribution_headers(catalog: Catalog) -> None:
    a = adapter(catalog, "openrouter")
    upstream = a.build_request(
        decode_request(b'{"messages": [{"role": "user", "content": "x"}]}', ChatRequest),
        endpoint(catalog, "openrouter", LLAMA),
        stream=False,
    )
    assert upstream.headers["HTTP-Referer"] == "http://localhost"
    assert upstream.headers["X-Title"] == "Switchyard"
    assert upstream.headers["Authorization"] == "Bearer key"
    # Other hosts send no such headers.
    plain = adapter(catalog, "groq").headers(endpoint(catalog, "groq", LLAMA))
    assert "X-Title" not in plain and "HTTP-Referer" not in plain


# --- plans are computed once ----------------------------------------------------------------


def test_plan_is_cached_per_endpoint(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE)
    build(a, ep, seed=1)
    first = a.plan(ep)
    build(a, ep, seed=2)
    assert a.plan(ep) is first


def test_hosts_without_a_map_move_nothing(catalog: Catalog) -> None:
    plan = plan_request(frozenset({"max_tokens", "seed"}), ParameterMap())
    assert plan.moved == () and plan.stream_usage is True
    assert "seed" not in plan.blank and "top_k" in plan.blank


def test_build_does_not_mutate_the_request(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE)
    body = {"messages": [{"role": "user", "content": "hi"}], "seed": 4, "tool_choice": "required"}
    request = decode_request(json.dumps(body).encode(), ChatRequest)
    a.build_request(request, ep, stream=True)
    assert request.seed == 4 and request.tool_choice == "required"


# --- the map itself is validated at start-up ------------------------------------------------


@pytest.mark.parametrize(
    ("parameter_map", "message"),
    [
        ({"rename": {"sead": "random_seed"}}, "rename names unknown request fields: sead"),
        ({"drop": ["nope"]}, "drop names unknown request fields: nope"),
        ({"values": {"tool_chioce": {"a": "b"}}}, "values names unknown request fields"),
        ({"rename": {"seed": "messages"}}, "invalid target"),
        ({"renames": {}}, "unknown field `renames`"),
    ],
)
def test_invalid_parameter_map_stops_start_up(parameter_map: dict[str, Any], message: str) -> None:
    provider = {"slug": "h", "name": "H", "protocol": "openai", "parameter_map": parameter_map}
    with pytest.raises(CatalogError, match=message):
        load_catalog(extra={"providers": [provider]})


# --- message fields -------------------------------------------------------------------------


def test_groq_drops_message_names(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "groq"), endpoint(catalog, "groq", LLAMA)
    messages = [
        {"role": "system", "content": "Be brief.", "name": "boss"},
        {"role": "user", "content": "hi", "name": "ann"},
    ]
    body = build(a, ep, messages=messages)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_mistral_drops_echoed_reasoning(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "mistral"), endpoint(catalog, "mistral", LARGE)
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning": "greet", "refusal": None},
        {"role": "user", "content": "again"},
    ]
    body = build(a, ep, messages=messages)
    assert body["messages"][1] == {"role": "assistant", "content": "hello"}


def test_messages_untouched_when_nothing_to_drop(catalog: Catalog) -> None:
    a, ep = adapter(catalog, "groq"), endpoint(catalog, "groq", LLAMA)
    body = {"messages": [{"role": "user", "content": "hi", "name": "ann"}]}
    request = decode_request(json.dumps(body).encode(), ChatRequest)
    a.build_request(request, ep, stream=False)
    assert request.messages[0].name == "ann"  # the caller's request is not changed
    plain = decode_request(b'{"messages": [{"role": "user", "content": "x"}]}', ChatRequest)
    plan = a.plan(ep)
    assert _strip_messages(plain.messages, plan.message_drop) is None


def test_invalid_message_drop_stops_start_up() -> None:
    provider = {
        "slug": "h",
        "name": "H",
        "protocol": "openai",
        "parameter_map": {"message_drop": ["content"]},
    }
    with pytest.raises(CatalogError, match="message_drop names fields messages cannot lose"):
        load_catalog(extra={"providers": [provider]})


# --- which hosts are enabled ----------------------------------------------------------------


def test_self_hosted_and_keyed_hosts_are_enabled_by_their_settings(catalog: Catalog) -> None:
    def enabled(env: dict[str, str], **providers: ProviderConfig) -> set[str]:
        settings = Settings(local=LocalModelConfig(enabled=False), providers=providers)
        return set(build_providers(catalog, settings, UpstreamClient(), env))

    assert enabled({}) == set()  # nothing has a default address or key
    assert enabled({"VLLM_BASE_URL": "http://gpu:8000/v1", "LLAMACPP_BASE_URL": "http://b/v1"}) == {
        "vllm",
        "llamacpp",
    }
    assert enabled({}, vllm=ProviderConfig(base_url="http://gpu:8000/v1")) == {"vllm"}
    assert enabled({}, ollama=ProviderConfig()) == {"ollama"}
    assert enabled({"OLLAMA_HOST": "box"}) == {"ollama"}
    keyed = {
        "MISTRAL_API_KEY": "m",
        "GROQ_API_KEY": "g",
        "TOGETHER_API_KEY": "t",
        "DEEPINFRA_API_KEY": "d",
        "FIREWORKS_API_KEY": "f",
        "OPENROUTER_API_KEY": "o",
    }
    assert enabled(keyed) == {"mistral", "groq", "together", "deepinfra", "fireworks", "openrouter"}


def test_mistral_model_length_is_a_length_finish() -> None:
    assert normalise_finish("model_length") == "length"
