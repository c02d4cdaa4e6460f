"""Ollama's native protocol: base URL, request building, replies, NDJSON streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from switchyard.providers.base import StreamState
from switchyard.providers.ollama import (
    NDJSONParser,
    OllamaAdapter,
    finish_reason,
    parse_host,
    resolve_base_url,
)
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request

LLAMA = "meta-llama/llama-3.1-8b-instruct"
QWEN = "qwen/qwen3-32b"
PNG = "iVBORw0KGgoAAAANSUhEUg=="
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def adapter(catalog: Catalog) -> OllamaAdapter:
    return OllamaAdapter(catalog.providers["ollama"], "http://127.0.0.1:11434", catalog)


def endpoint(catalog: Catalog, model: str = LLAMA) -> Endpoint:
    (found,) = [e for e in catalog.endpoints_for(model) if e.provider == "ollama"]
    return found


def build(
    adapter: OllamaAdapter, ep: Endpoint, *, stream: bool = False, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    request = decode_request(json.dumps({"model": ep.model, **fields}).encode(), ChatRequest)
    upstream = adapter.build_request(request, ep, stream=stream)
    assert upstream.method == "POST" and upstream.url == "http://127.0.0.1:11434/api/chat"
    body: dict[str, Any] = json.loads(upstream.body)
    return body


# --- base URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("example.com:56789/", "http://example.com:56789"),
        ("https://example.com", "https://example.com:443"),
        ("http://example.com/path/", "http://example.com:80/path"),
        ("[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_ollama_host_parsed_like_the_ollama_client(host: str, url: str) -> None:
    assert parse_host(host) == url


def test_enabled_only_when_configured(catalog: Catalog) -> None:
    spec = catalog.providers["ollama"]
    assert resolve_base_url(spec, None, {}) is None
    assert resolve_base_url(spec, ProviderConfig(), {}) == "http://127.0.0.1:11434"
    assert resolve_base_url(spec, None, {"OLLAMA_HOST": "gpu:1234"}) == "http://gpu:1234"
    config = ProviderConfig(base_url="http://box:11434/")
    assert resolve_base_url(spec, config, {"OLLAMA_HOST": "gpu"}) == "http://box:11434"
    assert resolve_base_url(spec, ProviderConfig(enabled=False), {"OLLAMA_HOST": "gpu"}) is None


# --- request building -----------------------------------------------------------------------


def test_minimal_body(adapter: OllamaAdapter, catalog: Catalog) -> None:
    body = build(adapter, endpoint(catalog), stream=True)
    assert body == {
        "model": "llama3.1:8b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }


def test_sampling_goes_into_options(adapter: OllamaAdapter, catalog: Catalog) -> None:
    body = build(
        adapter,
        endpoint(catalog),
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        min_p=0.05,
        seed=7,
        repetition_penalty=1.1,
        frequency_penalty=0.5,
        presence_penalty=0.25,
        max_tokens=64,
        stop="END",
        logprobs=True,  # not supported by the endpoint: not sent
    )
    assert body["options"] == {
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "seed": 7,
        "repeat_penalty": 1.1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "num_predict": 64,
        "stop": ["END"],
    }
    assert "logprobs" not in body
    assert build(adapter, endpoint(catalog), max_completion_tokens=9)["options"] == {
        "num_predict": 9
    }


def test_messages_with_images_tools_and_results(adapter: OllamaAdapter, catalog: Catalog) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Really."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is "},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "this?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning": "They want the weather.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    body = build(adapter, endpoint(catalog), messages=messages)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Really."},
        {"role": "user", "content": "What is this?", "images": [PNG]},
        {
            "role": "assistant",
            "content": "",
            "thinking": "They want the weather.",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]


def test_remote_image_url_is_a_clear_error(adapter: OllamaAdapter, catalog: Catalog) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]
    with pytest.raises(InvalidRequest) as info:
        build(adapter, endpoint(catalog), messages=[{"role": "user", "content": content}])
    assert info.value.field == "messages[0].content[0].image_url.url"
    assert info.value.status == 400


def test_non_object_tool_arguments_are_a_clear_error(
    adapter: OllamaAdapter, catalog: Catalog
) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
    ]
    with pytest.raises(InvalidRequest) as info:
        build(adapter, endpoint(catalog), messages=messages)
    assert info.value.field == "messages[1].tool_calls[0].function.arguments"


def test_tools_and_formats(adapter: OllamaAdapter, catalog: Catalog) -> None:
    body = build(adapter, endpoint(catalog), tools=[TOOL])
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert "tools" not in build(adapter, endpoint(catalog), tools=[TOOL], tool_choice="none")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert build(adapter, endpoint(catalog), response_format=fmt)["format"] == schema
    json_mode = build(adapter, endpoint(catalog), response_format={"type": "json_object"})
    assert json_mode["format"] == "json"
    assert "format" not in build(adapter, endpoint(catalog), response_format={"type": "text"})


@pytest.mark.parametrize(
    ("fields", "think"),
    [
        ({"reasoning": {"effort": "high"}}, True),
        ({"reasoning": {"enabled": False}}, False),
        ({"reasoning": {"effort": "none"}}, False),
        ({"reasoning_effort": "low"}, True),
        ({}, None),
    ],
)
def test_think_switch(
    adapter: OllamaAdapter, catalog: Catalog, fields: dict[str, Any], think: bool | None
) -> None:
    body = build(adapter, endpoint(catalog, QWEN), **fields)
    assert body.get("think") == think
    # Llama's endpoint does not list reasoning: never sent there.
    assert "think" not in build(adapter, endpoint(catalog), **fields)


# --- responses ------------------------------------------------------------------------------

REPLY = {
    "model": "qwen3:32b",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "Hi there", "thinking": "Greet back."},
    "done": True,
    "done_reason": "stop",
    "total_duration": 1,
    "prompt_eval_count": 12,
    "eval_count": 4,
}


def test_parse_reply(adapter: OllamaAdapter) -> None:
    result = adapter.parse_response(json.dumps(REPLY).encode())
    (choice,) = result.choices
    assert choice.message.content == "Hi there" and choice.message.reasoning == "Greet back."
    assert choice.finish_reason == "stop" and choice.native_finish_reason == "stop"
    assert result.usage is not None
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 4, 16)


def test_parse_tool_call_reply(adapter: OllamaAdapter) -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    raw = {**REPLY, "message": {"role": "assistant", "content": "", "tool_calls": calls}}
    (choice,) = adapter.parse_response(json.dumps(raw).encode()).choices
    assert choice.finish_reason == "tool_calls" and choice.native_finish_reason == "stop"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []  # type: ignore[misc]
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("native", "calls", "normal"),
    [("stop", False, "stop"), ("length", False, "length"), ("load", False, "stop"),
     ("stop", True, "tool_calls"), ("weird", False, "error"), (None, False, "stop")],
)  # fmt: skip
def test_finish_reasons(native: str | None, calls: bool, normal: str) -> None:
    assert finish_reason(native, calls) == normal


# --- streams --------------------------------------------------------------------------------


def test_ndjson_parser_splits_anywhere() -> None:
    data = b'{"a": 1}\n\n{"b": "\xc3\xa9"}\n{"c": 3}'
    for size in (1, 2, 5, len(data)):
        parser = NDJSONParser()
        events = []
        for i in range(0, len(data), size):
            events += parser.feed(data[i : i + size])
        events += parser.flush()
        assert [e.data for e in events] == [b'{"a": 1}', b'{"b": "\xc3\xa9"}', b'{"c": 3}']


def line(**fields: Any) -> SSEEvent:
    return SSEEvent(json.dumps({"model": "m", "created_at": "t", "done": False, **fields}).encode())


def test_stream_events(adapter: OllamaAdapter) -> None:
    state = StreamState()
    chunks = []
    for event in [
        line(message={"role": "assistant", "content": "", "thinking": "Hm"}),
        line(message={"role": "assistant", "content": "Hel"}),
        line(message={"role": "assistant", "content": "lo"}),
        line(
            message={
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}],
            }
        ),
        line(
            message={"role": "assistant", "content": ""},
            done=True,
            done_reason="stop",
            prompt_eval_count=3,
            eval_count=2,
        ),
    ]:
        chunks += adapter.parse_stream_event(event, state)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant" and deltas[0].reasoning == "Hm"
    assert [d.content for d in deltas[1:3]] == ["Hel", "lo"]
    (call,) = deltas[3].tool_calls  # type: ignore[misc]
    assert call.index == 0 and call.function.name == "f"  # type: ignore[union-attr]
    assert call.function.arguments == '{"x":1}'  # type: ignore[union-attr]
    finish = chunks[-2].choices[0]
    assert finish.finish_reason == "tool_calls" and finish.native_finish_reason == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.total_tokens == 5  # type: ignore[union-attr]


def test_stream_error_line_keeps_the_message(adapter: OllamaAdapter) -> None:
    with pytest.raises(UpstreamError) as info:
        adapter.parse_stream_event(SSEEvent(b'{"error": "model crashed"}'), StreamState())
    assert info.value.metadata is not None and info.value.metadata["raw"] == "model crashed"


def test_http_error_keeps_the_message(adapter: OllamaAdapter) -> None:
    exc = adapter.map_error(404, {}, b'{"error": "model \\"x\\" not found, try pulling it first"}')
    assert exc.status == 502 and exc.upstream_status == 404 and exc.retryable
    assert exc.metadata is not None
    assert exc.metadata["raw"] == 'model "x" not found, try pulling it first'
    busy = adapter.map_error(503, {"Retry-After": "1"}, b'{"error": "server busy"}')
    assert isinstance(busy, UpstreamUnavailable)
    bad = adapter.map_error(400, {}, b'{"error": "invalid options"}')
    assert bad.status == 400 and not bad.retryable


def test_string_arguments_pass_through(adapter: OllamaAdapter) -> None:
    calls = [{"function": {"name": "f", "arguments": '{"a": 1}'}}]
    raw = {**REPLY, "message": {"role": "assistant", "content": "", "tool_calls": calls}}
    (choice,) = adapter.parse_response(json.dumps(raw).encode()).choices
    (call,) = choice.message.tool_calls or []  # type: ignore[misc]
    assert call.function.arguments == '{"a": 1}'
