"""OpenAI and Azure adapters: credentials, request building, error mapping. No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.providers.azure import AzureAdapter
from switchyard.providers.openai import (
    Credentials,
    OpenAIAdapter,
    map_openai_error,
    normalise_finish,
    resolve_credentials,
)
from switchyard.settings import ProviderConfig
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request

SECRET = "sk-proj-abc123secret"
VLLM = {
    "providers": [
        {
            "slug": "vllm",
            "name": "vLLM",
            "protocol": "openai",
            "base_url": "http://gpu:8000/v1",
            "requires_api_key": False,
        }
    ],
    "endpoints": [
        {
            "model": "openai/gpt-4o",
            "provider": "vllm",
            "upstream_model": "/models/gpt-4o-ish",
            "context_length": 32000,
            "pricing": {"prompt": "0", "completion": "0"},
            "supported_parameters": ["max_tokens", "temperature", "top_k", "min_p"],
        }
    ],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(extra=VLLM)


def endpoint(catalog: Catalog, provider: str, model: str = "openai/gpt-4o") -> Endpoint:
    (found,) = [e for e in catalog.endpoints_for(model) if e.provider == provider]
    return found


def request(**fields: Any) -> ChatRequest:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


# --- credentials ----------------------------------------------------------------------------


def test_config_beats_env_beats_spec_default(catalog: Catalog) -> None:
    spec = catalog.providers["openai"]
    env = {"OPENAI_API_KEY": "env-key", "OPENAI_BASE_URL": "https://env.example/v1"}
    config = ProviderConfig(api_key="cfg-key", base_url="https://cfg.example/v1/")

    from_config = resolve_credentials(spec, config, env)
    assert from_config == Credentials("cfg-key", "https://cfg.example/v1")  # trailing / dropped

    from_env = resolve_credentials(spec, None, env)
    assert from_env == Credentials("env-key", "https://env.example/v1")

    default_url = resolve_credentials(spec, ProviderConfig(api_key="cfg-key"), {})
    assert default_url == Credentials("cfg-key", "https://api.openai.com/v1")

    # Each field resolves on its own: config key with the environment's URL.
    mixed = resolve_credentials(spec, ProviderConfig(api_key="cfg-key"), env)
    assert mixed == Credentials("cfg-key", "https://env.example/v1")


def test_missing_key_means_unavailable(catalog: Catalog) -> None:
    spec = catalog.providers["openai"]
    assert resolve_credentials(spec, None, {}) is None
    assert resolve_credentials(spec, ProviderConfig(base_url="https://x/v1"), {}) is None
    assert resolve_credentials(spec, None, {"OPENAI_API_KEY": ""}) is None


def test_disabled_provider_is_unavailable(catalog: Catalog) -> None:
    spec = catalog.providers["openai"]
    config = ProviderConfig(api_key="cfg-key", enabled=False)
    assert resolve_credentials(spec, config, {"OPENAI_API_KEY": "env-key"}) is None


def test_provider_without_key_requirement(catalog: Catalog) -> None:
    creds = resolve_credentials(catalog.providers["vllm"], None, {})
    assert creds == Credentials(None, "http://gpu:8000/v1")
    # The local provider needs no key but has no base URL either: not an HTTP provider.
    assert resolve_credentials(catalog.providers["local"], None, {}) is None


def test_azure_credentials(catalog: Catalog) -> None:
    spec = catalog.providers["azure"]
    env = {"AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/"}
    assert resolve_credentials(spec, None, {"AZURE_OPENAI_API_KEY": "az"}) is None  # no URL
    creds = resolve_credentials(spec, None, env)
    assert creds == Credentials("az", "https://res.openai.azure.com", "2024-10-21")
    newer = resolve_credentials(spec, None, env | {"OPENAI_API_VERSION": "2025-01-01-preview"})
    assert newer is not None and newer.api_version == "2025-01-01-preview"
    pinned = resolve_credentials(spec, ProviderConfig(api_version="2024-06-01"), env)
    assert pinned is not None and pinned.api_version == "2024-06-01"


def test_credentials_repr_hides_key() -> None:
    creds = Credentials(SECRET, "https://api.openai.com/v1")
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert "api_key=set" in repr(creds)


# --- request building -----------------------------------------------------------------------

EVERYTHING = {
    "models": ["openai/gpt-4o", "openai/gpt-4-turbo"],
    "provider": {"order": ["azure"], "allow_fallbacks": False},
    "session_id": "sess-1",
    "top_k": 40,
    "min_p": 0.1,
    "repetition_penalty": 1.1,
    "plugins": [{"id": "web"}],
    "transforms": ["middle-out"],
    "route": "fallback",
    "reasoning": {"effort": "low"},
    "temperature": 0.3,
    "top_p": 0.9,
    "max_tokens": 50,
    "seed": 7,
    "stop": ["END"],
    "logprobs": True,
    "top_logprobs": 2,
    "user": "user-42",
    "stream_options": {"include_usage": False},
}
SWITCHYARD_ONLY = {"models", "provider", "session_id", "plugins", "transforms", "route"}


def build(
    adapter: OpenAIAdapter, ep: Endpoint, *, stream: bool = False, **fields: Any
) -> dict[str, Any]:
    upstream = adapter.build_request(request(**fields), ep, stream=stream)
    assert upstream.method == "POST"
    body: dict[str, Any] = json.loads(upstream.body)
    return body


def test_openai_body_drops_unsupported_and_switchyard_fields(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    body = build(adapter, endpoint(catalog, "openai"), **EVERYTHING)
    assert not SWITCHYARD_ONLY & body.keys()
    for name in ("top_k", "min_p", "repetition_penalty", "reasoning", "stream_options"):
        assert name not in body
    assert body == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o",
        "stream": False,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "seed": 7,
        "stop": ["END"],
        "logprobs": True,
        "top_logprobs": 2,
        "user": "user-42",
    }


def test_unsent_fields_stay_absent(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    body = build(adapter, endpoint(catalog, "openai"))
    assert body == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o",
        "stream": False,
    }


def test_max_completion_tokens_forwarded_via_alias(catalog: Catalog) -> None:
    # gpt-4o's catalog entry lists max_tokens only; its alias must still get through.
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    body = build(adapter, endpoint(catalog, "openai"), max_completion_tokens=64)
    assert body["max_completion_tokens"] == 64


def test_endpoint_supported_parameters_gate_fields(catalog: Catalog) -> None:
    creds = Credentials(None, "http://gpu:8000/v1")
    adapter = OpenAIAdapter(catalog.providers["vllm"], creds, catalog)
    body = build(adapter, endpoint(catalog, "vllm"), **EVERYTHING)
    assert body["model"] == "/models/gpt-4o-ish"
    assert body["top_k"] == 40
    assert body["min_p"] == 0.1
    assert body["temperature"] == 0.3
    assert body["user"] == "user-42"  # protocol plumbing, always forwarded
    for name in ("top_p", "seed", "stop", "logprobs", "repetition_penalty", *SWITCHYARD_ONLY):
        assert name not in body


def test_stream_asks_for_usage(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    body = build(adapter, endpoint(catalog, "openai"), stream=True, **EVERYTHING)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_stream_flag_comes_from_caller_not_request(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    upstream = adapter.build_request(
        request(stream=True), endpoint(catalog, "openai"), stream=False
    )
    body = json.loads(upstream.body)
    assert body["stream"] is False
    assert "stream_options" not in body


def test_openai_url_and_headers(catalog: Catalog) -> None:
    creds = Credentials(SECRET, "https://api.openai.com/v1")
    adapter = OpenAIAdapter(catalog.providers["openai"], creds, catalog)
    upstream = adapter.build_request(request(), endpoint(catalog, "openai"), stream=False)
    assert upstream.url == "https://api.openai.com/v1/chat/completions"
    assert upstream.headers["Authorization"] == f"Bearer {SECRET}"
    assert upstream.headers["Content-Type"] == "application/json"


def test_no_authorization_header_without_key(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(catalog.providers["vllm"], Credentials(None, "http://gpu/v1"), catalog)
    upstream = adapter.build_request(request(), endpoint(catalog, "vllm"), stream=False)
    assert "Authorization" not in upstream.headers


def test_build_request_does_not_mutate_the_request(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    req = request(**EVERYTHING)
    adapter.build_request(req, endpoint(catalog, "openai"), stream=True)
    assert req.model == "openai/gpt-4o"
    assert req.top_k == 40
    assert req.stream is False


# --- Azure ----------------------------------------------------------------------------------

AZURE_CREDS = Credentials("az-secret", "https://res.openai.azure.com", "2024-10-21")


def test_azure_url(catalog: Catalog) -> None:
    adapter = AzureAdapter(catalog.providers["azure"], AZURE_CREDS, catalog)
    upstream = adapter.build_request(request(), endpoint(catalog, "azure"), stream=False)
    assert upstream.url == (
        "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21"
    )


def test_azure_base_url_already_ending_in_openai(catalog: Catalog) -> None:
    creds = Credentials("k", "https://res.openai.azure.com/openai", "2024-10-21")
    adapter = AzureAdapter(catalog.providers["azure"], creds, catalog)
    assert adapter.url(endpoint(catalog, "azure")) == (
        "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21"
    )


def test_azure_deployment_override(catalog: Catalog) -> None:
    deployments = {"openai/gpt-4o": "prod-4o", "openai/gpt-4-turbo": "turbo dep/1"}
    adapter = AzureAdapter(catalog.providers["azure"], AZURE_CREDS, catalog, deployments)
    assert "/deployments/prod-4o/chat/completions?" in adapter.url(endpoint(catalog, "azure"))
    turbo = endpoint(catalog, "azure", "openai/gpt-4-turbo")
    assert "/deployments/turbo%20dep%2F1/chat/completions?" in adapter.url(turbo)
    mini = endpoint(catalog, "azure", "openai/gpt-4o-mini-2024-07-18")
    assert "/deployments/gpt-4o-mini-2024-07-18/" in adapter.url(mini)  # not overridden


def test_azure_headers_and_body(catalog: Catalog) -> None:
    adapter = AzureAdapter(catalog.providers["azure"], AZURE_CREDS, catalog)
    upstream = adapter.build_request(request(**EVERYTHING), endpoint(catalog, "azure"), stream=True)
    assert upstream.headers["api-key"] == "az-secret"
    assert "Authorization" not in upstream.headers
    body = json.loads(upstream.body)
    assert "model" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.3
    assert not SWITCHYARD_ONLY & body.keys()


# --- errors and finish reasons --------------------------------------------------------------


def test_rate_limit_is_retryable_and_keeps_retry_after() -> None:
    body = b'{"error": {"message": "Rate limit reached", "type": "requests"}}'
    exc = map_openai_error("OpenAI", 429, {"Retry-After": "2.5"}, body)
    assert isinstance(exc, UpstreamRateLimited)
    assert exc.status == 429
    assert exc.retryable is True
    assert exc.retry_after == 2.5
    assert exc.headers["Retry-After"] == "3"  # whole seconds, rounded up
    assert exc.metadata is not None
    assert exc.metadata["raw"] == {"message": "Rate limit reached", "type": "requests"}
    assert exc.metadata["upstream_status"] == 429
    assert exc.metadata["provider_name"] == "OpenAI"
    assert "Rate limit reached" in exc.message


def test_lowercase_retry_after_header() -> None:
    exc = map_openai_error("OpenAI", 429, {"retry-after": "7"}, b"{}")
    assert exc.retry_after == 7.0
    assert exc.headers["Retry-After"] == "7"


def test_rate_limit_without_retry_after() -> None:
    exc = map_openai_error("OpenAI", 429, {}, b"{}")
    assert exc.retry_after is None
    assert "Retry-After" not in exc.headers


def test_bad_request_is_not_retryable() -> None:
    body = b'{"error": {"message": "Invalid value for temperature", "param": "temperature"}}'
    exc = map_openai_error("OpenAI", 400, {}, body)
    assert type(exc) is UpstreamError
    assert exc.status == 400
    assert exc.retryable is False
    assert "Invalid value for temperature" in exc.message


@pytest.mark.parametrize(
    ("status", "kind", "ours"),
    [(500, UpstreamError, 502), (503, UpstreamUnavailable, 503), (502, UpstreamError, 502)],
)
def test_server_errors_are_retryable(status: int, kind: type[UpstreamError], ours: int) -> None:
    exc = map_openai_error("OpenAI", status, {}, b'{"error": {"message": "boom"}}')
    assert type(exc) is kind
    assert exc.status == ours
    assert exc.retryable is True
    assert exc.upstream_status == status


def test_timeout_status() -> None:
    exc = map_openai_error("OpenAI", 504, {}, b"")
    assert isinstance(exc, UpstreamTimeout)
    assert exc.status == 408
    assert exc.retryable is True


def test_non_json_body_is_kept_as_text() -> None:
    exc = map_openai_error("Azure", 502, {}, b"<html>Bad Gateway</html>")
    assert exc.metadata is not None
    assert exc.metadata["raw"] == "<html>Bad Gateway</html>"
    assert exc.message == "Azure returned HTTP 502: <html>Bad Gateway</html>"


def test_empty_body() -> None:
    exc = map_openai_error("OpenAI", 401, {}, b"")
    assert exc.message == "OpenAI returned HTTP 401"
    assert exc.metadata is not None and "raw" not in exc.metadata


def test_string_error_body() -> None:
    exc = map_openai_error("OpenAI", 422, {}, b'{"error": "unprocessable"}')
    assert exc.status == 422 and exc.retryable is False
    assert exc.metadata is not None and exc.metadata["raw"] == "unprocessable"


@pytest.mark.parametrize(
    ("native", "normal"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("eos", "stop"),
        ("something_new", "error"),
        (None, None),
    ],
)
def test_normalise_finish(native: str | None, normal: str | None) -> None:
    assert normalise_finish(native) == normal


def test_parse_response_normalises_finish_reason(catalog: Catalog) -> None:
    adapter = OpenAIAdapter(
        catalog.providers["openai"], Credentials(SECRET, "https://o/v1"), catalog
    )
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "function_call",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    result = adapter.parse_response(json.dumps(body).encode())
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.choices[0].native_finish_reason == "function_call"
