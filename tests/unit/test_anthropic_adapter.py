"""Anthropic adapter: credentials, request building, response and stream parsing, errors.

No I/O; stream events are fed as SSE bytes, split at awkward places.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import (
    InvalidRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from switchyard.providers.anthropic import AnthropicAdapter
from switchyard.providers.base import StreamState
from switchyard.providers.openai import Credentials, resolve_credentials
from switchyard.settings import ProviderConfig
from switchyard.wire.chat import ChatChunk, ChatRequest, Usage
from switchyard.wire.codec import decode_request

SECRET = "sk-ant-api03-secret"
SONNET = "anthropic/claude-sonnet-4.5"
HAIKU_35 = "anthropic/claude-3.5-haiku"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def adapter(catalog: Catalog) -> AnthropicAdapter:
    spec = catalog.providers["anthropic"]
    return AnthropicAdapter(spec, Credentials(SECRET, "https://api.anthropic.com"), catalog)


def endpoint(catalog: Catalog, model: str = SONNET) -> Endpoint:
    (found,) = [e for e in catalog.endpoints_for(model) if e.provider == "anthropic"]
    return found


def request(**body: Any) -> ChatRequest:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return decode_request(json.dumps(body).encode(), ChatRequest)


def build(
    adapter: AnthropicAdapter,
    catalog: Catalog,
    model: str = SONNET,
    stream: bool = False,
    **body: Any,
) -> dict[str, Any]:
    upstream = adapter.build_request(request(**body), endpoint(catalog, model), stream=stream)
    return json.loads(upstream.body)  # type: ignore[no-any-return]


# --- catalog ------------------------------------------------------------------------------

# USD per million tokens: input, output, cache read, 5-minute cache write (Anthropic's page).
PUBLISHED = {
    "anthropic/claude-sonnet-4.5": ("3", "15", "0.30", "3.75"),
    "anthropic/claude-haiku-4.5": ("1", "5", "0.10", "1.25"),
    "anthropic/claude-opus-4.5": ("5", "25", "0.50", "6.25"),
    "anthropic/claude-opus-4.1": ("15", "75", "1.50", "18.75"),
    "anthropic/claude-sonnet-4": ("3", "15", "0.30", "3.75"),
    "anthropic/claude-3.5-haiku": ("0.80", "4", "0.08", "1"),
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_catalog_prices_and_limits(catalog: Catalog, model: str) -> None:
    # Other providers (Bedrock) may serve Claude too; these are Anthropic's own endpoints.
    (found,) = [e for e in catalog.endpoints_for(model) if e.provider == "anthropic"]
    pricing = found.pricing
    per_million = [
        p * 1_000_000
        for p in (
            pricing.prompt,
            pricing.completion,
            pricing.input_cache_read,
            pricing.input_cache_write,
        )
        if p is not None
    ]
    assert per_million == [Decimal(p) for p in PUBLISHED[model]]
    assert found.provider == "anthropic" and found.context_length == 200_000
    spec = catalog.models[model]
    assert spec.encoding == "native"  # no Claude tokenizer here: Anthropic reports usage
    assert {"tools", "tool_choice", "max_tokens"} <= set(spec.supported_parameters)
    assert ("reasoning" in spec.supported_parameters) == (model != "anthropic/claude-3.5-haiku")


# --- credentials and transport ----------------------------------------------------------------


def test_credentials_from_the_sdk_environment(catalog: Catalog) -> None:
    spec = catalog.providers["anthropic"]
    env = {"ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": "http://sim:1/"}
    found = resolve_credentials(spec, None, env)
    assert found == Credentials(SECRET, "http://sim:1")
    assert resolve_credentials(spec, None, {}) is None  # no key: provider left out
    config = ProviderConfig(api_key="k2", base_url="http://conf")
    assert resolve_credentials(spec, config, env) == Credentials("k2", "http://conf")
    assert SECRET not in repr(found)


def test_url_and_headers(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    upstream = adapter.build_request(request(), endpoint(catalog), stream=True)
    assert upstream.method == "POST"
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers["x-api-key"] == SECRET
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in upstream.headers
    body = json.loads(upstream.body)
    assert body["stream"] is True
    assert body["model"] == "claude-sonnet-4-5-20250929"


# --- request building -----------------------------------------------------------------------


def test_system_and_developer_are_hoisted(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    body = build(
        adapter,
        catalog,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {
                "role": "developer",
                "content": [
                    {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "user", "content": "Again"},
        ],
    )
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}},
    ]
    # The two user turns, no longer separated, become one.
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}],
        }
    ]


def test_max_tokens_from_request_or_endpoint(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    assert build(adapter, catalog, max_tokens=77)["max_tokens"] == 77
    assert build(adapter, catalog, max_completion_tokens=55)["max_tokens"] == 55
    assert build(adapter, catalog)["max_tokens"] == 64000
    assert build(adapter, catalog, HAIKU_35)["max_tokens"] == 8192


def test_sampling_stop_and_user(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    body = build(adapter, catalog, temperature=1.7, top_p=0.9, top_k=40, stop="END", user="u-9")
    assert body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert body["top_p"] == 0.9 and body["top_k"] == 40
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-9"}
    assert build(adapter, catalog, stop=["a", "b"], temperature=0.3)["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in build(adapter, catalog)


def test_empty_turns_are_dropped(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Anyone?"},
    ]
    body = build(adapter, catalog, messages=messages)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Anyone?"}],
        }
    ]


def test_images(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    body = build(adapter, catalog, messages=[{"role": "user", "content": content}])
    assert body["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_files_become_documents(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    content = [
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        },
        {"type": "file", "file": {"file_data": "https://example.com/b.pdf"}},
        {"type": "file", "file": {"filename": "n.txt", "file_data": "data:text/plain;base64,aGk="}},
    ]
    body = build(adapter, catalog, messages=[{"role": "user", "content": content}])
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/b.pdf"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
            "title": "n.txt",
        },
    ]
    for bad in ({"file_id": "file-1"}, {"file_data": "data:application/zip;base64,AA=="}):
        parts = [{"type": "text", "text": "read"}, {"type": "file", "file": bad}]
        with pytest.raises(InvalidRequest) as caught:
            build(adapter, catalog, messages=[{"role": "user", "content": parts}])
        assert caught.value.field == "messages[0].content[1].file.file_data"


def test_unsupported_image_type_names_the_field(
    adapter: AnthropicAdapter, catalog: Catalog
) -> None:
    content = [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}]
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, messages=[{"role": "user", "content": content}])
    assert caught.value.field == "messages[0].content[0].image_url.url"
    audio = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, messages=[{"role": "user", "content": audio}])
    assert caught.value.field == "messages[0].content[0]"


CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather and time in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_details": [
            {
                "type": "reasoning.text",
                "text": "Two tools.",
                "signature": "sig1",
                "format": "anthropic-claude-v1",
                "index": 0,
            },
            {
                "type": "reasoning.encrypted",
                "data": "opaque",
                "format": "anthropic-claude-v1",
                "index": 1,
            },
            {
                "type": "reasoning.text",
                "text": "not Claude's",
                "signature": "x",
                "format": "openai-responses-v1",
            },
        ],
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "toolu_2", "type": "function", "function": {"name": "time", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"},
    {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21:04"}]},
    {"role": "user", "content": "Thanks. Lyon?"},
]


def test_tool_calls_and_results(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    body = build(adapter, catalog, messages=CONVERSATION)
    user, assistant, results = body["messages"]
    assert user["role"] == "user"
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Two tools.", "signature": "sig1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}},
        ],
    }
    # Both results and the next user text share one user turn, results first.
    assert results == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "18 C"}],
            },
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "21:04"}],
            },
            {"type": "text", "text": "Thanks. Lyon?"},
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_tool_arguments_name_the_field(
    adapter: AnthropicAdapter, catalog: Catalog, arguments: str
) -> None:
    messages = [dict(m) for m in CONVERSATION]
    messages[1] = {
        **messages[1],
        "tool_calls": [
            CONVERSATION[1]["tool_calls"][0],
            {
                "id": "toolu_2",
                "type": "function",
                "function": {"name": "time", "arguments": arguments},
            },
        ],
    }
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, messages=messages)
    assert caught.value.field == "messages[1].tool_calls[1].function.arguments"
    assert caught.value.status == 400


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        },
        "cache_control": {"type": "ephemeral"},
    },
    {"type": "function", "function": {"name": "time"}},
]


def test_tools_and_tool_choice(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    body = build(adapter, catalog, tools=TOOLS)
    assert body["tools"] == [
        {
            "name": "weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "description": "Weather in a city",
            "strict": True,
            "cache_control": {"type": "ephemeral"},
        },
        {"name": "time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    choices = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
    }
    for ours, theirs in choices.items():
        assert build(adapter, catalog, tools=TOOLS, tool_choice=ours)["tool_choice"] == theirs
    named = {"type": "function", "function": {"name": "time"}}
    assert build(adapter, catalog, tools=TOOLS, tool_choice=named)["tool_choice"] == {
        "type": "tool",
        "name": "time",
    }
    serial = build(adapter, catalog, tools=TOOLS, parallel_tool_calls=False)
    assert serial["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_reasoning_becomes_thinking(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    body = build(
        adapter,
        catalog,
        max_tokens=10000,
        reasoning={"effort": "high"},
        temperature=0.2,
        top_p=0.5,
        top_k=5,
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8000}
    # Claude refuses sampling changes while thinking
    assert not {"temperature", "top_p", "top_k"} & set(body)
    body = build(adapter, catalog, max_tokens=10000, reasoning_effort="low")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    body = build(adapter, catalog, max_tokens=3000, reasoning={"max_tokens": 2500})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2500}
    body = build(adapter, catalog, reasoning={"enabled": True})  # medium of 64000, capped
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 32000}
    body = build(adapter, catalog, max_tokens=3000, reasoning={"effort": "minimal"})
    assert body["thinking"]["budget_tokens"] == 1024  # Anthropic's minimum
    assert "thinking" not in build(adapter, catalog, reasoning={"enabled": False, "effort": "high"})
    assert "thinking" not in build(adapter, catalog, reasoning_effort="none")
    # A model without extended thinking is not asked for it.
    assert "thinking" not in build(adapter, catalog, HAIKU_35, reasoning={"effort": "high"})


def test_reasoning_needs_room(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, max_tokens=500, reasoning={"effort": "high"})
    assert caught.value.field == "max_tokens"
    with pytest.raises(InvalidRequest) as caught:
        build(
            adapter,
            catalog,
            max_tokens=4000,
            reasoning={"effort": "high"},
            tools=TOOLS,
            tool_choice="required",
        )
    assert caught.value.field == "tool_choice"


def test_structured_output(adapter: AnthropicAdapter, catalog: Catalog) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    body = build(adapter, catalog, response_format=fmt)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in build(adapter, catalog, response_format={"type": "json_object"})
    assert "output_config" not in build(adapter, catalog, HAIKU_35, response_format=fmt)


# --- response parsing -----------------------------------------------------------------------

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Let me check. "},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Lyon"}},
        {"type": "text", "text": "Done."},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens": 30,
        "output_tokens_details": {"thinking_tokens": 12},
    },
}


def test_parse_response(adapter: AnthropicAdapter) -> None:
    result = adapter.parse_response(json.dumps(MESSAGE).encode())
    choice = result.choices[0]
    assert result.id == "msg_1" and result.model == "claude-sonnet-4-5-20250929"
    assert choice.message.content == "Let me check. Done."
    assert choice.message.reasoning == "Hmm."
    assert choice.message.reasoning_details == [
        {
            "type": "reasoning.text",
            "text": "Hmm.",
            "signature": "sig",
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {
            "type": "reasoning.encrypted",
            "data": "opaque",
            "format": "anthropic-claude-v1",
            "index": 1,
        },
    ]
    (call,) = choice.message.tool_calls  # type: ignore[misc]
    assert call.id == "toolu_1" and call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Lyon"}
    assert choice.finish_reason == "tool_calls" and choice.native_finish_reason == "tool_use"
    usage = result.usage
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (130, 30, 160)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.prompt_tokens_details.cache_write_tokens == 20
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 12


@pytest.mark.parametrize(
    ("native", "canonical"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(adapter: AnthropicAdapter, native: str, canonical: str) -> None:
    body = {**MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": native}
    choice = adapter.parse_response(json.dumps(body).encode()).choices[0]
    assert (choice.finish_reason, choice.native_finish_reason) == (canonical, native)
    assert choice.message.tool_calls is UNSET and choice.message.reasoning_details is UNSET


def test_plain_text_response_has_no_reasoning_fields(adapter: AnthropicAdapter) -> None:
    body = {**MESSAGE, "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn"}
    message = adapter.parse_response(json.dumps(body).encode()).choices[0].message
    assert message.content == "Hi"
    assert message.reasoning is UNSET and message.reasoning_details is UNSET


# --- stream parsing -------------------------------------------------------------------------


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def stream_body() -> bytes:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_s",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 7,
                    "cache_read_input_tokens": 50,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "ping"},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Two "},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "calls."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "On it"},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Ly'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": 'on"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42, "output_tokens_details": {"thinking_tokens": 9}},
        },
        {"type": "message_stop"},
    ]
    return b"".join(sse(e) for e in events)


def parse_stream(adapter: AnthropicAdapter, body: bytes, step: int) -> list[ChatChunk]:
    parser = adapter.stream_parser()
    state = StreamState()
    chunks: list[ChatChunk] = []
    for start in range(0, len(body), step):
        for event in parser.feed(body[start : start + step]):
            chunks.extend(adapter.parse_stream_event(event, state))
    for event in parser.flush():
        chunks.extend(adapter.parse_stream_event(event, state))
    return chunks


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_stream_reassembles(adapter: AnthropicAdapter, step: int) -> None:
    chunks = parse_stream(adapter, stream_body(), step)
    assert all(c.id == "msg_s" and c.model == "claude-sonnet-4-5-20250929" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    # The prompt's usage arrives first (a cut stream is still charged for it) ...
    early = chunks[1].usage
    assert chunks[1].choices == [] and isinstance(early, Usage)
    assert (early.prompt_tokens, early.completion_tokens) == (57, 1)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content for d in deltas if isinstance(d.content, str)) == "On it"
    assert "".join(d.reasoning for d in deltas if isinstance(d.reasoning, str)) == "Two calls."
    details = [x for d in deltas if d.reasoning_details for x in d.reasoning_details]  # type: ignore[union-attr]
    assert {x["index"] for x in details} == {0}
    assert all(
        x["format"] == "anthropic-claude-v1" and x["type"] == "reasoning.text" for x in details
    )
    assert [x["signature"] for x in details if "signature" in x] == ["sig"]
    calls: dict[int, dict[str, str]] = {}
    for d in deltas:
        for call in d.tool_calls or []:  # type: ignore[union-attr]
            entry = calls.setdefault(call.index, {"id": "", "name": "", "args": ""})
            if isinstance(call.id, str):
                entry["id"] += call.id
            if call.function and isinstance(call.function.name, str):  # type: ignore[union-attr]
                entry["name"] += call.function.name  # type: ignore[union-attr]
            if call.function and isinstance(call.function.arguments, str):  # type: ignore[union-attr]
                entry["args"] += call.function.arguments  # type: ignore[union-attr]
    # Tool-call indexes count calls (0, 1), not Anthropic's content block indexes (2, 3).
    assert calls == {
        0: {"id": "toolu_a", "name": "weather", "args": '{"city": "Lyon"}'},
        1: {"id": "toolu_b", "name": "time", "args": "{}"},
    }
    finish = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [(f.finish_reason, f.native_finish_reason) for f in finish] == [
        ("tool_calls", "tool_use")
    ]
    # ... and the final figures last.
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (57, 42)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 50
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 9


def test_redacted_thinking_streams_as_encrypted_detail(adapter: AnthropicAdapter) -> None:
    state = StreamState()
    start = {
        "type": "message_start",
        "message": {
            "id": "m",
            "model": "c",
            "content": [],
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "redacted_thinking", "data": "opaque"},
    }
    chunks: list[ChatChunk] = []
    for event in adapter.stream_parser().feed(sse(start) + sse(block)):
        chunks.extend(adapter.parse_stream_event(event, state))
    assert chunks[-1].choices[0].delta.reasoning_details == [
        {
            "type": "reasoning.encrypted",
            "data": "opaque",
            "format": "anthropic-claude-v1",
            "index": 0,
        }
    ]


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("overloaded_error", UpstreamUnavailable),
        ("rate_limit_error", UpstreamRateLimited),
        ("api_error", UpstreamError),
    ],
)
def test_error_event_mid_stream(adapter: AnthropicAdapter, kind: str, error_type: type) -> None:
    error = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    (event,) = adapter.stream_parser().feed(sse(error))
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_stream_event(event, StreamState())
    assert type(caught.value) is error_type
    assert caught.value.metadata is not None
    assert caught.value.metadata["raw"] == {"type": kind, "message": "Overloaded"}


# --- errors ---------------------------------------------------------------------------------


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def test_overloaded_is_unavailable(adapter: AnthropicAdapter) -> None:
    error = adapter.map_error(529, {}, error_body("overloaded_error", "Overloaded"))
    assert isinstance(error, UpstreamUnavailable) and error.retryable
    assert error.metadata is not None
    assert error.metadata["raw"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert error.metadata["upstream_status"] == 529
    assert "Overloaded" in error.message


def test_rate_limited_keeps_retry_after(adapter: AnthropicAdapter) -> None:
    error = adapter.map_error(429, {"retry-after": "12"}, error_body("rate_limit_error", "slow"))
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == 12 and error.headers["Retry-After"] == "12"


def test_bad_request_is_not_retried(adapter: AnthropicAdapter) -> None:
    error = adapter.map_error(400, {}, error_body("invalid_request_error", "messages: bad"))
    assert error.status == 400 and not error.retryable
    assert error.metadata is not None and error.metadata["raw"]["message"] == "messages: bad"
    assert SECRET not in error.message
