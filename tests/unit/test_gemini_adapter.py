"""Gemini adapter: credentials, request building, response and stream parsing, errors. No I/O.

Request bodies the adapter builds are validated with google-genai's own pydantic types
(which forbid unknown fields), so a misspelt or misplaced field fails here.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from google.genai import types

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import (
    InvalidRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.providers.base import StreamState
from switchyard.providers.gemini import GeminiAdapter, resolve_gemini_credentials
from switchyard.providers.gemini_errors import map_gemini_error
from switchyard.providers.gemini_response import normalise_finish
from switchyard.providers.openai import Credentials
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent
from switchyard.wire.chat import ChatChunk, ChatRequest, Usage
from switchyard.wire.codec import decode_request

SECRET = "AIzaSy-secret-key"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def endpoint(catalog: Catalog, model: str = "google/gemini-2.5-flash") -> Endpoint:
    (found,) = [e for e in catalog.endpoints_for(model) if e.provider == "google-ai-studio"]
    return found


@pytest.fixture(scope="module")
def adapter(catalog: Catalog) -> GeminiAdapter:
    spec = catalog.providers["google-ai-studio"]
    return GeminiAdapter(
        spec, Credentials(SECRET, "https://generativelanguage.googleapis.com", "v1beta"), catalog
    )


def request(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "Hi"}])
    fields.setdefault("model", "google/gemini-2.5-flash")
    return decode_request(json.dumps(fields).encode(), ChatRequest)


def build(
    adapter: GeminiAdapter,
    catalog: Catalog,
    model: str = "google/gemini-2.5-flash",
    stream: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    upstream = adapter.build_request(request(**fields), endpoint(catalog, model), stream=stream)
    body: dict[str, Any] = json.loads(upstream.body)
    _validate_with_sdk(body)
    return body


def _validate_with_sdk(body: dict[str, Any]) -> None:
    """Every part of the body must be a valid google-genai type (unknown fields forbidden)."""
    assert set(body) <= {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])


# --- credentials --------------------------------------------------------------------------


def test_credentials_follow_the_sdk_environment(catalog: Catalog) -> None:
    spec = catalog.providers["google-ai-studio"]
    both = resolve_gemini_credentials(spec, None, {"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"})
    assert both is not None and both.api_key == "g"  # google-genai prefers GOOGLE_API_KEY
    gemini = resolve_gemini_credentials(spec, None, {"GEMINI_API_KEY": SECRET})
    assert gemini is not None and gemini.api_key == SECRET
    assert gemini.base_url == "https://generativelanguage.googleapis.com"
    assert gemini.api_version == "v1beta"
    assert resolve_gemini_credentials(spec, None, {}) is None
    configured = resolve_gemini_credentials(
        spec, ProviderConfig(api_key="c", base_url="http://sim:1/"), {"GEMINI_API_KEY": "m"}
    )
    assert configured is not None and configured.api_key == "c"
    assert configured.base_url == "http://sim:1"
    moved = resolve_gemini_credentials(
        spec, None, {"GEMINI_API_KEY": "m", "GOOGLE_GEMINI_BASE_URL": "http://proxy"}
    )
    assert moved is not None and moved.base_url == "http://proxy"
    assert SECRET not in repr(gemini)
    off = resolve_gemini_credentials(spec, ProviderConfig(enabled=False), {"GEMINI_API_KEY": "m"})
    assert off is None


def test_urls_and_key_header(adapter: GeminiAdapter, catalog: Catalog) -> None:
    plain = adapter.build_request(request(), endpoint(catalog), stream=False)
    assert plain.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    streamed = adapter.build_request(request(), endpoint(catalog), stream=True)
    assert streamed.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert plain.headers["x-goog-api-key"] == SECRET
    assert SECRET not in plain.url and SECRET.encode() not in plain.body


# --- request building ---------------------------------------------------------------------


def test_system_and_roles(adapter: GeminiAdapter, catalog: Catalog) -> None:
    body = build(
        adapter,
        catalog,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "Anyone?"}]},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Ça va?"},
        ],
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    # Consecutive user messages are one turn: Gemini wants turns to alternate.
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "Anyone?"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
        {"role": "user", "parts": [{"text": "Ça va?"}]},
    ]
    assert body["generationConfig"] == {"candidateCount": 1}


def test_tool_round_trip(adapter: GeminiAdapter, catalog: Catalog) -> None:
    body = build(
        adapter,
        catalog,
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "forecast", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
            {
                "role": "tool",
                "tool_call_id": "call_0",
                "content": [{"type": "text", "text": "sun"}],
            },
            {"role": "user", "content": "Thanks"},
        ],
    )
    model_turn, answers = body["contents"][1], body["contents"][2]
    assert model_turn == {
        "role": "model",
        "parts": [
            {"functionCall": {"id": "call_0", "name": "weather", "args": {"city": "Paris"}}},
            {"functionCall": {"id": "call_1", "name": "forecast", "args": {}}},
        ],
    }
    # Both results (and the user's follow-up) travel in one user turn, each named after
    # the call it answers.
    assert answers == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "call_1",
                    "name": "forecast",
                    "response": {"output": "rain"},
                }
            },
            {
                "functionResponse": {
                    "id": "call_0",
                    "name": "weather",
                    "response": {"output": "sun"},
                }
            },
            {"text": "Thanks"},
        ],
    }
    assert len(body["contents"]) == 3


@pytest.mark.parametrize(
    ("arguments", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")]
)
def test_bad_tool_arguments_name_the_field(
    adapter: GeminiAdapter, catalog: Catalog, arguments: str, message: str
) -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": arguments}},
            ],
        },
    ]
    with pytest.raises(InvalidRequest, match=message) as caught:
        build(adapter, catalog, messages=messages)
    assert caught.value.status == 400
    assert caught.value.field == "messages[1].tool_calls[1].function.arguments"


def test_tool_result_without_a_call(adapter: GeminiAdapter, catalog: Catalog) -> None:
    messages = [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "nowhere", "content": "42"},
    ]
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, messages=messages)
    assert caught.value.field == "messages[1].tool_call_id"


def test_media_parts(adapter: GeminiAdapter, catalog: Catalog) -> None:
    body = build(
        adapter,
        catalog,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "https://generativelanguage.googleapis.com/v1beta/files/abc"
                        },
                    },
                    {"type": "video_url", "video_url": {"url": "https://youtu.be/xyz"}},
                ],
            }
        ],
    )
    assert body["contents"][0]["parts"] == [
        {"text": "Describe"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"inlineData": {"mimeType": "audio/wav", "data": PNG}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        {"fileData": {"fileUri": "https://youtu.be/xyz"}},
    ]


@pytest.mark.parametrize(
    "url", ["https://example.com/cat.png", "data:image/png;base64,%%%", "data:image/png,raw"]
)
def test_unusable_image_urls_are_refused(
    adapter: GeminiAdapter, catalog: Catalog, url: str
) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, messages=messages)
    assert caught.value.field == "messages[0].content[0].image_url.url"


# A schema with what the OpenAPI subset of `parameters` cannot say.
RICH_SCHEMA = {
    "type": "object",
    "$defs": {"unit": {"type": "string", "enum": ["C", "F"]}},
    "properties": {
        "city": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "unit": {"$ref": "#/$defs/unit"},
        "tags": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["city"],
    "additionalProperties": False,
}


def test_tools_keep_full_json_schema(adapter: GeminiAdapter, catalog: Catalog) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Look up", "parameters": RICH_SCHEMA},
        },
        {"type": "function", "function": {"name": "ping"}},
    ]
    body = build(adapter, catalog, tools=tools)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "weather", "description": "Look up", "parametersJsonSchema": RICH_SCHEMA},
                {"name": "ping"},
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "ping"}},
            {"mode": "ANY", "allowedFunctionNames": ["ping"]},
        ),
    ],
)
def test_tool_choice(
    adapter: GeminiAdapter, catalog: Catalog, choice: Any, config: dict[str, Any]
) -> None:
    tools = [{"type": "function", "function": {"name": "ping"}}]
    body = build(adapter, catalog, tools=tools, tool_choice=choice)
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_generation_config(adapter: GeminiAdapter, catalog: Catalog) -> None:
    fields = {
        "max_tokens": 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 20,
        "seed": 7,
        "stop": "END",
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
    }
    flash2 = build(adapter, catalog, "google/gemini-2.0-flash-001", **fields)
    assert flash2["generationConfig"] == {
        "candidateCount": 1,
        "maxOutputTokens": 50,
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 20,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "stopSequences": ["END"],
    }
    # 2.5 Flash's catalog entry lists no penalties or top_k: they are not forwarded.
    flash25 = build(
        adapter,
        catalog,
        max_completion_tokens=9,
        stop=["a", "b"],
        **{k: v for k, v in fields.items() if k not in ("max_tokens", "stop")},
    )
    assert flash25["generationConfig"] == {
        "candidateCount": 1,
        "maxOutputTokens": 9,
        "temperature": 0.3,
        "topP": 0.9,
        "seed": 7,
        "stopSequences": ["a", "b"],
    }


def test_response_formats(adapter: GeminiAdapter, catalog: Catalog) -> None:
    schema_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": RICH_SCHEMA, "strict": True},
    }
    body = build(adapter, catalog, response_format=schema_format)
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"] == RICH_SCHEMA
    body = build(adapter, catalog, response_format={"type": "json_object"})
    assert body["generationConfig"] == {"candidateCount": 1, "responseMimeType": "application/json"}
    body = build(adapter, catalog, response_format={"type": "text"})
    assert body["generationConfig"] == {"candidateCount": 1}
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, response_format={"type": "grammar", "grammar": "root ::= x"})
    assert caught.value.field == "response_format.type"


@pytest.mark.parametrize(
    ("fields", "thinking"),
    [
        ({"reasoning": {"max_tokens": 2000}}, {"thinkingBudget": 2000, "includeThoughts": True}),
        ({"reasoning": {"effort": "low"}}, {"thinkingBudget": 1024, "includeThoughts": True}),
        ({"reasoning": {"effort": "high"}}, {"thinkingBudget": 24576, "includeThoughts": True}),
        ({"reasoning": {"enabled": True}}, {"thinkingBudget": -1, "includeThoughts": True}),
        ({"reasoning": {"enabled": False}}, {"thinkingBudget": 0, "includeThoughts": False}),
        ({"reasoning": {"effort": "none"}}, {"thinkingBudget": 0, "includeThoughts": False}),
        ({"reasoning": {"exclude": True}}, {"includeThoughts": False}),
        (
            {"reasoning": {"effort": "medium", "exclude": True}},
            {"thinkingBudget": 8192, "includeThoughts": False},
        ),
        ({"reasoning_effort": "medium"}, {"thinkingBudget": 8192, "includeThoughts": True}),
    ],
)
def test_reasoning_becomes_thinking_config(
    adapter: GeminiAdapter, catalog: Catalog, fields: dict[str, Any], thinking: dict[str, Any]
) -> None:
    body = build(adapter, catalog, **fields)
    assert body["generationConfig"]["thinkingConfig"] == thinking
    # Gemini 2.0 Flash does not think: the catalog lists no reasoning, nothing is sent.
    older = build(adapter, catalog, "google/gemini-2.0-flash-001", **fields)
    assert "thinkingConfig" not in older["generationConfig"]


# --- response parsing ---------------------------------------------------------------------


def response(
    parts: list[dict[str, Any]] | None,
    finish: str | None = "STOP",
    usage: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"modelVersion": "gemini-2.5-flash", "responseId": "resp-1", **extra}
    if parts is not None:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body["candidates"] = [candidate]
    if usage is not None:
        body["usageMetadata"] = usage
    types.GenerateContentResponse.model_validate(body)  # the fixture itself is real Gemini
    return body


USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 30,
    "thoughtsTokenCount": 50,
    "cachedContentTokenCount": 100,
    "totalTokenCount": 200,
}


def test_text_thoughts_and_usage(adapter: GeminiAdapter) -> None:
    body = response(
        [{"text": "Hmm.", "thought": True}, {"text": "Hello"}, {"text": " there"}], usage=USAGE
    )
    result = adapter.parse_response(json.dumps(body).encode())
    (choice,) = result.choices
    assert choice.message.content == "Hello there"
    assert choice.message.reasoning == "Hmm."
    assert (choice.finish_reason, choice.native_finish_reason) == ("stop", "STOP")
    assert result.id == "resp-1" and result.model == "gemini-2.5-flash"
    usage = result.usage
    assert usage is not None and isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 80, 200)
    assert usage.prompt_tokens_details.cached_tokens == 100  # type: ignore[union-attr]
    assert usage.completion_tokens_details.reasoning_tokens == 50  # type: ignore[union-attr]


def test_function_calls_get_ids_and_signatures(adapter: GeminiAdapter, catalog: Catalog) -> None:
    body = response(
        [
            {
                "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2ln",
            },
            {"functionCall": {"name": "time", "args": {}, "id": "given-id"}},
        ]
    )
    result = adapter.parse_response(json.dumps(body).encode())
    message = result.choices[0].message
    assert result.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    calls = message.tool_calls
    assert isinstance(calls, list)
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_0", "weather", {"city": "Paris"}),
        ("given-id", "time", {}),
    ]
    assert message.reasoning_details == [
        {
            "type": "reasoning.encrypted",
            "data": "c2ln",
            "id": "call_0",
            "format": "google-gemini-v1",
            "index": 0,
        }
    ]
    # Sent back with the conversation, the signature rides on its call again.
    history = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
            "reasoning_details": message.reasoning_details,
        },
    ]
    built = build(adapter, catalog, messages=history)
    parts = built["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "c2ln"
    assert "thoughtSignature" not in parts[1]


@pytest.mark.parametrize(
    ("native", "canonical"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "error"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("LANGUAGE", "error"),
    ],
)
def test_finish_reasons(adapter: GeminiAdapter, native: str, canonical: str) -> None:
    result = adapter.parse_response(json.dumps(response([{"text": "x"}], native)).encode())
    assert (result.choices[0].finish_reason, result.choices[0].native_finish_reason) == (
        canonical,
        native,
    )
    assert normalise_finish("STOP", called_functions=True) == "tool_calls"
    assert normalise_finish(None) is None


def test_blocked_prompt(adapter: GeminiAdapter) -> None:
    body = response(
        None,
        usage={"promptTokenCount": 8, "totalTokenCount": 8},
        promptFeedback={"blockReason": "OTHER"},
    )
    result = adapter.parse_response(json.dumps(body).encode())
    (choice,) = result.choices
    assert (choice.finish_reason, choice.native_finish_reason) == ("content_filter", "OTHER")
    assert choice.message.content is None
    assert result.usage is not None and result.usage.prompt_tokens == 8  # type: ignore[union-attr]


# --- stream parsing -----------------------------------------------------------------------


def stream(adapter: GeminiAdapter, events: list[dict[str, Any]]) -> list[ChatChunk]:
    raw = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)
    parser = adapter.stream_parser()
    state = StreamState()
    chunks: list[ChatChunk] = []
    # Fed in awkward slices: framing must not depend on where reads split.
    for i in range(0, len(raw), 7):
        for event in parser.feed(raw[i : i + 7]):
            chunks.extend(adapter.parse_stream_event(event, state))
    for event in parser.flush():
        chunks.extend(adapter.parse_stream_event(event, state))
    return chunks


def test_stream_text_reasoning_and_usage(adapter: GeminiAdapter) -> None:
    partial = {"promptTokenCount": 120, "totalTokenCount": 120}
    chunks = stream(
        adapter,
        [
            response([{"text": "Hmm", "thought": True}], None, partial),
            response([{"text": "Hel"}], None, partial),
            response([{"text": "lo"}], "STOP", USAGE),
        ],
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant" and deltas[0].reasoning == "Hmm"
    assert "".join(d.content for d in deltas if isinstance(d.content, str)) == "Hello"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes == [None, None, "stop"]
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    usage = usage_chunks[0].usage
    assert usage is not None and isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (120, 80)
    assert len({c.id for c in chunks}) == 1


def test_stream_function_calls_are_whole(adapter: GeminiAdapter) -> None:
    chunks = stream(
        adapter,
        [
            response([{"functionCall": {"name": "a", "args": {"x": 1}}}], None),
            response(
                [{"functionCall": {"name": "b", "args": {}}}],
                "STOP",
                {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
            ),
        ],
    )
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    assert [(c.index, c.id, c.type) for c in calls] == [
        (0, "call_0", "function"),
        (1, "call_1", "function"),
    ]
    assert calls[0].function.name == "a"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"x": 1}  # type: ignore[union-attr]
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.completion_tokens == 4  # type: ignore[union-attr]


def test_stream_blocked_prompt(adapter: GeminiAdapter) -> None:
    chunks = stream(
        adapter,
        [
            {
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
                "modelVersion": "gemini-2.5-flash",
            }
        ],
    )
    assert chunks[0].choices[0].finish_reason == "content_filter"
    assert chunks[0].choices[0].native_finish_reason == "SAFETY"
    assert chunks[1].usage.prompt_tokens == 5  # type: ignore[union-attr]


def test_stream_error_event(adapter: GeminiAdapter) -> None:
    error = {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_stream_event(SSEEvent(json.dumps(error).encode()), StreamState())
    assert caught.value.metadata is not None
    assert caught.value.metadata["raw"]["status"] == "INTERNAL"


# --- errors -------------------------------------------------------------------------------


def error_body(status: int, code: str, message: str, **extra: Any) -> bytes:
    return json.dumps(
        {"error": {"code": status, "message": message, "status": code, **extra}}
    ).encode()


def test_rate_limit_reads_retry_info() -> None:
    body = error_body(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota",
        details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
    )
    error = map_gemini_error("Google AI Studio", 429, {}, body)
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == 37
    assert error.headers["Retry-After"] == "37"
    assert error.metadata is not None and error.metadata["raw"]["status"] == "RESOURCE_EXHAUSTED"


def test_error_statuses() -> None:
    unavailable = map_gemini_error(
        "G", 503, {}, error_body(503, "UNAVAILABLE", "The model is overloaded.")
    )
    assert isinstance(unavailable, UpstreamUnavailable) and unavailable.retryable
    assert "overloaded" in unavailable.message
    timeout = map_gemini_error("G", 504, {}, error_body(504, "DEADLINE_EXCEEDED", "late"))
    assert isinstance(timeout, UpstreamTimeout)
    invalid = map_gemini_error("G", 400, {}, error_body(400, "INVALID_ARGUMENT", "bad"))
    assert invalid.status == 400 and not invalid.retryable
    assert invalid.metadata == {
        "provider_name": "G",
        "upstream_status": 400,
        "raw": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"},
    }
    region = map_gemini_error(
        "G", 400, {}, error_body(400, "FAILED_PRECONDITION", "User location is not supported")
    )
    assert region.retryable  # another provider may serve it
    listed = map_gemini_error(
        "G", 500, {}, b'[{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}]'
    )
    assert listed.retryable and "boom" in listed.message
    garbage = map_gemini_error("G", 502, {}, b"<html>bad gateway</html>")
    assert garbage.metadata is not None and "bad gateway" in garbage.metadata["raw"]


# --- catalog ------------------------------------------------------------------------------

# USD per million tokens as Google publishes them (paid tier, prompts up to 200K tokens):
# (prompt, completion, cache read, max output)
GOOGLE_PRICES = {
    "google/gemini-2.5-pro": ("1.25", "10", "0.125", 65536),
    "google/gemini-2.5-flash": ("0.30", "2.50", "0.03", 65536),
    "google/gemini-2.5-flash-lite": ("0.10", "0.40", "0.01", 65536),
    "google/gemini-2.0-flash-001": ("0.10", "0.40", "0.025", 8192),
}


@pytest.mark.parametrize("model", sorted(GOOGLE_PRICES))
def test_catalog_prices_and_limits(catalog: Catalog, model: str) -> None:
    prompt, completion, cache_read, max_output = GOOGLE_PRICES[model]
    found = endpoint(catalog, model)
    million = Decimal(1_000_000)
    assert found.pricing.prompt * million == Decimal(prompt)
    assert found.pricing.completion * million == Decimal(completion)
    assert found.pricing.input_cache_read is not None
    assert found.pricing.input_cache_read * million == Decimal(cache_read)
    assert found.pricing.image == 0  # images are prompt tokens at Gemini
    assert found.max_completion_tokens == max_output
    assert found.context_length == catalog.models[model].context_length == 1048576
    assert catalog.models[model].encoding == "native"
    assert found.upstream_model == model.removeprefix("google/")
    provider = catalog.providers[found.provider]
    assert (provider.name, provider.protocol) == ("Google AI Studio", "gemini")


def test_a_conversation_needs_content(adapter: GeminiAdapter, catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build(adapter, catalog, messages=[{"role": "system", "content": "Only rules."}])
    assert caught.value.field == "messages"
