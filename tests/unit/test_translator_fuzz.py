"""Property-based fuzzing of every translator: client bytes in, upstream bytes in.

The contract under test, per direction:

- Client side (wire decoding, validation, the /messages and /responses surfaces, and each
  adapter's ``build_request``): any input ends in a translated request or
  :class:`InvalidRequest` / :class:`UpstreamError`, never another exception (a 500).
- Upstream side (each adapter's ``parse_response``, ``stream_parser`` and
  ``parse_stream_event``, ``map_error``): any bytes end in canonical types or
  :class:`UpstreamError`, or the msgspec errors that :class:`HttpProvider` turns into one.
  A stream parser's ``feed`` is outside that mapping, so it may raise only UpstreamError.

Inputs are mostly *mutations of valid documents* (a real response with random subtrees
replaced or dropped), which reach much deeper than random bytes. Runs are derandomized
(a fixed seed, no example database) so CI sees the same examples every time, and bounded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import InvalidRequest, UpstreamError
from switchyard.providers.anthropic import AnthropicAdapter
from switchyard.providers.base import HttpAdapter, StreamState
from switchyard.providers.bedrock import BedrockAdapter, resolve_bedrock_credentials
from switchyard.providers.gemini import GeminiAdapter
from switchyard.providers.http import MALFORMED_UPSTREAM, HttpProvider
from switchyard.providers.ollama import OllamaAdapter
from switchyard.providers.openai import Credentials, OpenAIAdapter
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent
from switchyard.surfaces import messages as messages_surface
from switchyard.surfaces import responses as responses_surface
from switchyard.surfaces.messages_request import to_chat_request
from switchyard.surfaces.messages_stream import MessagesStream
from switchyard.surfaces.responses_request import to_chat
from switchyard.surfaces.responses_stream import ResponseStream
from switchyard.upstream.client import UpstreamClient
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult
from switchyard.wire.codec import decode_request
from switchyard.wire.messages import MessagesRequest
from switchyard.wire.responses import ResponsesRequest
from switchyard.wire.validate import validate_chat

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# What HttpProvider maps to UpstreamError when a parse raises it.
MAPPED = MALFORMED_UPSTREAM
CLIENT_ERRORS = (InvalidRequest, UpstreamError)

CATALOG: Catalog = load_catalog()


def _endpoint(provider: str) -> Endpoint:
    for model in CATALOG.models:
        for endpoint in CATALOG.endpoints_for(model):
            if endpoint.provider == provider:
                return endpoint
    raise LookupError(provider)


def _bedrock() -> BedrockAdapter:
    spec = CATALOG.providers["amazon-bedrock"]
    config = ProviderConfig(api_key="bk-test", region="us-east-1")
    credentials = resolve_bedrock_credentials(spec, config, {})
    assert credentials is not None
    return BedrockAdapter(spec, credentials, CATALOG)


ADAPTERS: dict[str, Callable[[], HttpAdapter]] = {
    "openai": lambda: OpenAIAdapter(
        CATALOG.providers["openai"], Credentials("sk-x", "https://api.openai.com/v1"), CATALOG
    ),
    "anthropic": lambda: AnthropicAdapter(
        CATALOG.providers["anthropic"], Credentials("sk-ant", "https://api.anthropic.com"), CATALOG
    ),
    "google-ai-studio": lambda: GeminiAdapter(
        CATALOG.providers["google-ai-studio"],
        Credentials("AIza", "https://generativelanguage.googleapis.com", "v1beta"),
        CATALOG,
    ),
    "amazon-bedrock": _bedrock,
    "ollama": lambda: OllamaAdapter(CATALOG.providers["ollama"], "http://127.0.0.1:1", CATALOG),
}

# --- strategies ---------------------------------------------------------------------------

leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "stop", "end_turn", "tool_use", "STOP", "text", "assistant", "{"])
)
any_json = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with subtrees possibly replaced by arbitrary JSON, dropped or repeated."""
    if draw(st.integers(0, 9)) == 0:
        return draw(any_json)
    if isinstance(value, dict):
        return {k: draw(mutated(v)) for k, v in value.items() if draw(st.integers(0, 9)) != 0}
    if isinstance(value, list) and value:
        picks = draw(st.lists(st.integers(0, len(value) - 1), max_size=len(value) + 1))
        return [draw(mutated(value[i])) for i in picks]
    return value


def as_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- upstream samples: one valid response and one valid stream per protocol --------------

RESPONSES: dict[str, Any] = {
    "openai": {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "total_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    },
    "anthropic": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "x", "signature": "s"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 1,
            "output_tokens": 1,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    },
    "google-ai-studio": {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "t", "thought": True},
                        {"text": "hi"},
                        {
                            "functionCall": {"name": "f", "args": {"a": 1}},
                            "thoughtSignature": "c2ln",
                        },
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 1,
            "candidatesTokenCount": 1,
            "totalTokenCount": 2,
            "thoughtsTokenCount": 0,
            "cachedContentTokenCount": 0,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    },
    "amazon-bedrock": {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s1"}}},
                    {"text": "hi"},
                    {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2, "cacheReadInputTokens": 0},
        "metrics": {"latencyMs": 1},
    },
    "ollama": {
        "model": "llama3",
        "created_at": "2024-01-01T00:00:00Z",
        "message": {
            "role": "assistant",
            "content": "hi",
            "thinking": "hm",
            "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
        },
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 1,
        "eval_count": 1,
    },
}

_OPENAI_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
_ANTHROPIC_START = {"type": "message_start", "message": {**RESPONSES["anthropic"], "content": []}}

# (event name or None, data) in a plausible order.
STREAMS: dict[str, list[tuple[str | None, Any]]] = {
    "openai": [
        (
            None,
            {
                **_OPENAI_CHUNK,
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "role": "assistant",
                            "content": "h",
                            "reasoning": "r",
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": "{"},
                                }
                            ],
                        },
                        "finish_reason": None,
                    }
                ],
            },
        ),
        (None, {**_OPENAI_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        (None, {**_OPENAI_CHUNK, "choices": [], "usage": RESPONSES["openai"]["usage"]}),
    ],
    "anthropic": [
        ("message_start", _ANTHROPIC_START),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "x"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "s"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "{"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "h"},
            },
        ),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 1},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
        ("ping", {"type": "ping"}),
    ],
    "google-ai-studio": [
        (None, RESPONSES["google-ai-studio"]),
        (None, {"error": {"code": 500, "message": "x", "status": "INTERNAL"}}),
    ],
    "amazon-bedrock": [
        ("messageStart", {"role": "assistant"}),
        (
            "contentBlockStart",
            {"start": {"toolUse": {"toolUseId": "t", "name": "f"}}, "contentBlockIndex": 1},
        ),
        ("contentBlockDelta", {"delta": {"text": "h"}, "contentBlockIndex": 0}),
        ("contentBlockDelta", {"delta": {"toolUse": {"input": "{"}}, "contentBlockIndex": 1}),
        (
            "contentBlockDelta",
            {
                "delta": {"reasoningContent": {"text": "x", "signature": "s"}},
                "contentBlockIndex": 0,
            },
        ),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                "metrics": {"latencyMs": 1},
            },
        ),
        ("exception:throttlingException", {"message": "slow down"}),
    ],
    "ollama": [
        (
            None,
            {
                "model": "m",
                "created_at": "t",
                "message": {"role": "assistant", "content": "h"},
                "done": False,
            },
        ),
        (None, RESPONSES["ollama"]),
        (None, {"error": "model crashed"}),
    ],
}

ERRORS: dict[str, Any] = {
    "openai": {"error": {"message": "bad", "type": "invalid_request_error", "code": None}},
    "anthropic": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
    "google-ai-studio": {"error": {"code": 429, "message": "q", "status": "RESOURCE_EXHAUSTED"}},
    "amazon-bedrock": {"message": "throttled"},
    "ollama": {"error": "model not found"},
}

PROVIDERS = sorted(ADAPTERS)


def stream_events(provider: str) -> st.SearchStrategy[list[SSEEvent]]:
    samples = STREAMS[provider]
    one = st.one_of(
        *(
            st.tuples(st.just(name) | st.sampled_from([n for n, _ in samples]), mutated(data))
            for name, data in samples
        )
    )
    return st.lists(one, min_size=1, max_size=8).map(
        lambda events: [SSEEvent(as_bytes(data), name) for name, data in events]
    )


# --- upstream side ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parse_response_survives_any_body(provider: str) -> None:
    adapter = ADAPTERS[provider]()

    @FUZZ
    @given(body=mutated(RESPONSES[provider]).map(as_bytes) | st.binary(max_size=64))
    def check(body: bytes) -> None:
        try:
            adapter.parse_response(body)
        except (UpstreamError, *MAPPED):
            pass

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parse_stream_event_survives_any_event_sequence(provider: str) -> None:
    adapter = ADAPTERS[provider]()

    @FUZZ
    @given(events=stream_events(provider))
    def check(events: list[SSEEvent]) -> None:
        state = StreamState()
        for event in events:
            try:
                adapter.parse_stream_event(event, state)
            except (UpstreamError, *MAPPED):
                return

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_parser_survives_any_bytes(provider: str) -> None:
    adapter = ADAPTERS[provider]()

    @FUZZ
    @given(pieces=st.lists(st.binary(max_size=40), max_size=6))
    def check(pieces: list[bytes]) -> None:
        parser = adapter.stream_parser()
        try:
            for piece in pieces:
                parser.feed(piece)
            parser.flush()
        except UpstreamError:
            pass

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_map_error_survives_any_body(provider: str) -> None:
    adapter = ADAPTERS[provider]()

    @FUZZ
    @given(
        status=st.integers(400, 599),
        body=mutated(ERRORS[provider]).map(as_bytes) | st.binary(max_size=32),
        header=st.text(max_size=30),
    )
    def check(status: int, body: bytes, header: str) -> None:
        headers = {"x-amzn-errortype": header, "retry-after": header, "content-type": header}
        error = adapter.map_error(status, headers, body)
        assert isinstance(error, UpstreamError)

    check()


# --- client side --------------------------------------------------------------------------

part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries(
                {
                    "url": st.sampled_from(
                        [
                            "https://example.com/a.png",
                            "data:image/png;base64,iVBORw0KGgo=",
                            "data:image/png;base64,%%%",
                            "data:image/x;base64,",
                            "https://www.youtube.com/watch?v=x",
                            "https://[::1",
                        ]
                    )
                },
                optional={"detail": st.sampled_from(["auto", "low", "high"])},
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("file"),
            "file": st.dictionaries(
                st.sampled_from(["file_data", "filename", "file_id"]),
                st.text(max_size=20) | st.just("data:application/pdf;base64,JVBE"),
                max_size=3,
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("input_audio"),
            "input_audio": st.dictionaries(
                st.sampled_from(["data", "format"]),
                st.sampled_from(["wav", "mp3", "AAAA", "", "x"]),
                max_size=2,
            ),
        }
    ),
)
content = st.text(max_size=10) | st.lists(part, max_size=3)
tool_call = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["c1", "c2", ""]),
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {
                "name": st.sampled_from(["f", "g", ""]),
                "arguments": st.sampled_from(["{}", '{"a":1}', "[1]", "{", "", "null"]),
            }
        ),
    }
)
message = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer"]), "content": st.text(max_size=10)}
    ),
    st.fixed_dictionaries({"role": st.just("user"), "content": content}),
    st.fixed_dictionaries(
        {"role": st.just("assistant")},
        optional={
            "content": content | st.none(),
            "tool_calls": st.lists(tool_call, max_size=2),
            "reasoning": st.text(max_size=5),
            "reasoning_details": st.lists(
                any_json.filter(lambda v: isinstance(v, dict))
                | st.just(
                    {
                        "type": "reasoning.text",
                        "text": "t",
                        "signature": "s",
                        "format": "anthropic-claude-v1",
                    }
                ),
                max_size=2,
            ),
        },
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("tool"),
            "tool_call_id": st.sampled_from(["c1", "c2", ""]),
            "content": content,
        }
    ),
)
tool = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["f", "g"])},
            optional={
                "description": st.text(max_size=5),
                "parameters": st.just({"type": "object", "properties": {"a": {"type": "integer"}}})
                | any_json.filter(lambda v: isinstance(v, dict)),
                "strict": st.booleans(),
            },
        ),
    }
)
chat_body = st.fixed_dictionaries(
    {"messages": st.lists(message, min_size=1, max_size=5)},
    optional={
        "stream": st.booleans(),
        "max_tokens": st.integers(1, 10**6),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(0, 500),
        "stop": st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=4),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "tools": st.lists(tool, max_size=2),
        "tool_choice": st.sampled_from(["none", "auto", "required"])
        | st.just({"type": "function", "function": {"name": "f"}}),
        "parallel_tool_calls": st.booleans(),
        "response_format": st.sampled_from(
            [
                {"type": "text"},
                {"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            ]
        ),
        "reasoning": st.fixed_dictionaries(
            {},
            optional={
                "effort": st.sampled_from(["high", "low", "none", "minimal"]),
                "max_tokens": st.integers(0, 10**5),
                "exclude": st.booleans(),
                "enabled": st.booleans(),
            },
        ),
        "reasoning_effort": st.sampled_from(["high", "low", "none", "minimal", "xhigh", "max"]),
        "frequency_penalty": st.floats(-2, 2),
        "presence_penalty": st.floats(-2, 2),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 20),
        "user": st.text(max_size=5),
        "service_tier": st.sampled_from(["auto", "flex", "priority"]),
        "verbosity": st.sampled_from(["low", "high"]),
        "modalities": st.lists(st.sampled_from(["text", "image", "audio"]), max_size=2),
    },
)


@FUZZ
@given(
    body=st.binary(max_size=64)
    | any_json.map(as_bytes)
    | mutated({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).map(as_bytes)
)
def test_chat_decoding_raises_only_invalid_request(body: bytes) -> None:
    with contextlib.suppress(InvalidRequest):
        validate_chat(decode_request(body, ChatRequest))


def _valid_chat(body: dict[str, Any]) -> ChatRequest | None:
    try:
        request = decode_request(as_bytes(body), ChatRequest)
        validate_chat(request)
    except InvalidRequest:
        return None
    return request


@pytest.mark.parametrize("provider", PROVIDERS)
def test_build_request_raises_only_client_errors(provider: str) -> None:
    adapter = ADAPTERS[provider]()
    endpoint = _endpoint(provider)

    @FUZZ
    @given(body=chat_body, stream=st.booleans())
    def check(body: dict[str, Any], stream: bool) -> None:
        request = _valid_chat(body)
        if request is None:
            return
        try:
            built = adapter.build_request(request, endpoint, stream=stream)
        except CLIENT_ERRORS:
            return
        assert built.body

    check()


MESSAGES_SAMPLE = {
    "model": "anthropic/claude-sonnet-4",
    "max_tokens": 10,
    "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
        },
    ],
    "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stop_sequences": ["x"],
}
RESPONSES_SAMPLE = {
    "model": "openai/gpt-4o",
    "instructions": "be brief",
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ],
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    "tool_choice": "auto",
    "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
    "reasoning": {"effort": "low"},
    "max_output_tokens": 20,
}


@FUZZ
@given(body=mutated(MESSAGES_SAMPLE).map(as_bytes) | st.binary(max_size=32))
def test_messages_surface_raises_only_invalid_request(body: bytes) -> None:
    try:
        chat = to_chat_request(decode_request(body, MessagesRequest))
        validate_chat(chat)
    except InvalidRequest:
        pass


@FUZZ
@given(body=mutated(RESPONSES_SAMPLE).map(as_bytes) | st.binary(max_size=32))
def test_responses_surface_raises_only_invalid_request(body: bytes) -> None:
    try:
        translation = to_chat(decode_request(body, ResponsesRequest))
        validate_chat(translation.chat)
    except InvalidRequest:
        pass


def _results(provider: str) -> st.SearchStrategy[ChatResult | None]:
    adapter = ADAPTERS[provider]()

    def parse(body: Any) -> ChatResult | None:
        try:
            return adapter.parse_response(as_bytes(body))
        except (UpstreamError, *MAPPED):
            return None

    return mutated(RESPONSES[provider]).map(parse)


@FUZZ
@given(result=st.one_of(*(_results(p) for p in PROVIDERS)))
def test_surfaces_render_any_parsed_result(result: ChatResult | None) -> None:
    if result is None:
        return
    messages_surface.to_messages_result(result, ["x"])
    translation = to_chat(msgspec.convert(RESPONSES_SAMPLE, ResponsesRequest))
    responses_surface.from_result(result, translation, "gen-1", 0)


def _chunks(provider: str) -> st.SearchStrategy[list[ChatChunk]]:
    adapter = ADAPTERS[provider]()

    def parse(events: list[SSEEvent]) -> list[ChatChunk]:
        state = StreamState()
        out: list[ChatChunk] = []
        for event in events:
            try:
                out.extend(adapter.parse_stream_event(event, state))
            except (UpstreamError, *MAPPED):
                break
        return out

    return stream_events(provider).map(parse)


@FUZZ
@given(chunks=st.one_of(*(_chunks(p) for p in PROVIDERS)))
def test_surfaces_stream_any_parsed_chunks(chunks: list[ChatChunk]) -> None:
    anthropic_stream = MessagesStream("msg_1", "m", stop_sequences=["x"])
    anthropic_stream.start()
    translation = to_chat(msgspec.convert(RESPONSES_SAMPLE, ResponsesRequest))
    responses_stream = ResponseStream(translation, "gen-1", "m", 0)
    responses_stream.start()
    for chunk in chunks:
        anthropic_stream.feed(chunk)
        responses_stream.feed(chunk)


# --- the HttpProvider boundary ------------------------------------------------------------


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A local upstream answering every request with the next queued body."""
    bodies: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=bodies.pop(0), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", bodies
    await runner.cleanup()


async def test_provider_turns_a_wrongly_shaped_response_into_upstream_error(
    upstream: tuple[str, list[bytes]],
) -> None:
    """A shape the fuzzer found: valid JSON whose usage is a number, not an object."""
    base_url, bodies = upstream
    spec = CATALOG.providers["amazon-bedrock"]
    config = ProviderConfig(api_key="bk-test", region="us-east-1", base_url=base_url)
    credentials = resolve_bedrock_credentials(spec, config, {})
    assert credentials is not None
    client = UpstreamClient()
    provider = HttpProvider(spec, BedrockAdapter(spec, credentials, CATALOG), client)
    bodies.append(b'{"output": {"message": {"content": []}}, "usage": 1.5}')
    request = decode_request(b'{"messages": [{"role": "user", "content": "hi"}]}', ChatRequest)
    try:
        with pytest.raises(UpstreamError, match="not valid"):
            await provider.complete(request, _endpoint("amazon-bedrock"))
    finally:
        await client.aclose()
