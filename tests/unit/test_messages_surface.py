"""The Anthropic Messages surface: request and response translation, the stream event
sequence, and error rendering. Outputs are checked against the official anthropic SDK types."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic.types
import msgspec
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from pydantic import TypeAdapter

from switchyard.errors import InvalidRequest, RateLimited, Unauthorized, UpstreamError
from switchyard.surfaces.messages import error_body, stop_reason, to_messages_result, tool_input
from switchyard.surfaces.messages_request import to_chat_request
from switchyard.surfaces.messages_stream import MessagesStream, event_frame
from switchyard.wire import messages as am
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResult,
    Choice,
    CompletionTokensDetails,
    Delta,
    FilePart,
    FunctionCall,
    FunctionCallDelta,
    ImagePart,
    PromptTokensDetails,
    ResponseMessage,
    StreamChoice,
    StreamError,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
)
from switchyard.wire.codec import decode_request, encode

PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SDK_EVENT: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def translate(**body: Any) -> ChatRequest:
    body.setdefault("model", "openai/gpt-4o")
    body.setdefault("max_tokens", 100)
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return to_chat_request(decode_request(json.dumps(body).encode(), am.MessagesRequest))


def refused(**body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        translate(**body)
    return caught.value


# --- request ------------------------------------------------------------------------------


def test_plain_request() -> None:
    chat = translate(
        model="local/smollm2-135m-instruct",
        max_tokens=50,
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        stream=True,
    )
    assert chat.model == "local/smollm2-135m-instruct"
    assert chat.messages == [UserMessage(content="Hi")]
    assert (chat.max_tokens, chat.temperature, chat.top_p, chat.top_k) == (50, 0.3, 0.9, 40)
    assert chat.stop == ["END"] and chat.user == "u-1" and chat.stream is True


def test_system_string_and_blocks() -> None:
    assert translate(system="Be brief.").messages[0] == SystemMessage(content="Be brief.")
    chat = translate(
        system=[
            {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "More."},
        ]
    )
    assert chat.messages[0] == SystemMessage(
        content=[
            TextPart(text="Rules.", cache_control={"type": "ephemeral"}),
            TextPart(text="More."),
        ]
    )
    # OpenRouter also takes a system turn inside messages.
    chat = translate(
        messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    )
    assert chat.messages == [SystemMessage(content="S"), UserMessage(content="U")]


def test_user_blocks_become_parts() -> None:
    chat = translate(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    {
                        "type": "document",
                        "title": "spec.pdf",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBE",
                        },
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                    },
                ],
            }
        ]
    )
    (message,) = chat.messages
    assert isinstance(message, UserMessage) and isinstance(message.content, list)
    text, inline, linked, pdf, notes = message.content
    assert text == TextPart(text="Look:")
    assert isinstance(inline, ImagePart) and inline.image_url.url == f"data:image/png;base64,{PNG}"
    assert isinstance(linked, ImagePart) and linked.image_url.url == "https://x.test/a.jpg"
    assert pdf == FilePart(
        file={"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}
    )
    assert notes == TextPart(text="notes")


def test_assistant_turn_keeps_thinking_text_and_tool_use() -> None:
    chat = translate(
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Use the tool.", "signature": "sig-1"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
        ],
        tools=[WEATHER],
    )
    assistant = chat.messages[1]
    assert isinstance(assistant, AssistantMessage)
    assert assistant.content == "Checking."
    assert assistant.tool_calls == [
        ToolCall(
            id="toolu_1", function=FunctionCall(name="get_weather", arguments='{"city":"Oslo"}')
        )
    ]
    assert assistant.reasoning_details == [
        {
            "type": "reasoning.text",
            "text": "Use the tool.",
            "signature": "sig-1",
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


def test_tool_results_become_tool_messages_before_the_user_text() -> None:
    chat = translate(
        messages=[
            {"role": "user", "content": "Two cities?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "a", "name": "get_weather", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here you go."},
                    {"type": "tool_result", "tool_use_id": "a", "content": "Sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "b",
                        "is_error": True,
                        "content": [{"type": "text", "text": "city unknown"}],
                    },
                ],
            },
        ],
        tools=[WEATHER],
    )
    assert chat.messages[2:] == [
        ToolMessage(tool_call_id="a", content="Sunny"),
        ToolMessage(
            tool_call_id="b", content=[TextPart(text="Error:"), TextPart(text="city unknown")]
        ),
        UserMessage(content="Here you go."),
    ]
    errored = translate(
        messages=[
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "f"}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c", "is_error": True, "content": "boom"}
                ],
            },
        ]
    )
    assert errored.messages[1] == ToolMessage(tool_call_id="c", content="Error: boom")


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", msgspec.UNSET),
        ({"type": "any"}, "required", msgspec.UNSET),
        ({"type": "none"}, "none", msgspec.UNSET),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {"type": "function", "function": {"name": "get_weather"}},
            False,
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: Any) -> None:
    chat = translate(tools=[WEATHER], tool_choice=choice)
    assert msgspec.to_builtins(chat.tool_choice) == expected
    assert chat.parallel_tool_calls == parallel
    assert chat.tools is not msgspec.UNSET
    (tool,) = chat.tools
    assert tool.function.name == "get_weather"
    assert tool.function.parameters == WEATHER["input_schema"]
    assert tool.function.description == "Current weather"


def test_thinking_and_output_config() -> None:
    chat = translate(thinking={"type": "enabled", "budget_tokens": 2048})
    assert chat.reasoning is not msgspec.UNSET and chat.reasoning.max_tokens == 2048
    chat = translate(thinking={"type": "disabled"})
    assert chat.reasoning is not msgspec.UNSET and chat.reasoning.enabled is False
    chat = translate(
        thinking={"type": "adaptive", "display": "omitted"}, output_config={"effort": "high"}
    )
    assert msgspec.to_builtins(chat.reasoning) == {
        "effort": "high",
        "enabled": True,
        "exclude": True,
    }
    chat = translate(
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}
    )
    assert msgspec.to_builtins(chat.response_format) == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }


def test_openrouter_extensions_pass_through() -> None:
    chat = translate(
        models=["openai/gpt-4o-mini"],
        provider={"only": ["openai"], "sort": "price"},
        session_id="s-1",
        user="end-user",
        metadata={"user_id": "ignored when user is set"},
        service_tier="standard_only",
    )
    assert chat.models == ["openai/gpt-4o-mini"]
    assert msgspec.to_builtins(chat.provider) == {"only": ["openai"], "sort": "price"}
    assert chat.session_id == "s-1" and chat.user == "end-user" and chat.service_tier == "default"
    assert translate(fallbacks=[{"model": "a/b"}, {"model": "c/d"}]).models == ["a/b", "c/d"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_use", "id": "x", "name": "f"}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "image", "source": {"type": "url", "url": "https://x"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "file:///etc/passwd"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": "x",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tools": [{"name": "has space", "input_schema": {}}]}, "tools[0].name"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice.name"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"models": ["a/b"], "fallbacks": [{"model": "c/d"}]}, "fallbacks"),
        ({"service_tier": "gold"}, "service_tier"),
        ({"temperature": 3}, "temperature"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    body = dict(body)
    if body.get("model", "") is None:
        del body["model"]
        with pytest.raises(InvalidRequest) as caught:
            to_chat_request(
                decode_request(
                    json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(),
                    am.MessagesRequest,
                )
            )
        error = caught.value
    else:
        error = refused(**body)
    assert error.field == field
    assert error.status == 400 and field in error.message


# --- response -----------------------------------------------------------------------------


def result(message: ResponseMessage, finish: str = "stop", **usage: Any) -> ChatResult:
    return ChatResult(
        id="gen-1",
        created=1,
        model="openai/gpt-4o",
        provider="OpenAI",
        choices=[
            Choice(index=0, message=message, finish_reason=finish, native_finish_reason=finish)
        ],
        usage=Usage(
            prompt_tokens=usage.get("prompt", 20),
            completion_tokens=usage.get("completion", 7),
            total_tokens=usage.get("prompt", 20) + usage.get("completion", 7),
            prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.get("cached", 0)),
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=usage.get("reasoning", 0)
            ),
            cost=Decimal("0.000012345678901234"),
        ),
    )


def sdk_message(message: am.MessagesResult) -> anthropic.types.Message:
    return anthropic.types.Message.model_validate_json(encode(message))


def test_result_with_reasoning_text_and_tool_calls() -> None:
    message = to_messages_result(
        result(
            ResponseMessage(
                content="Let me check.",
                reasoning="Need weather.",
                reasoning_details=[
                    {
                        "type": "reasoning.text",
                        "text": "Need weather.",
                        "signature": "sig",
                        "index": 0,
                    }
                ],
                tool_calls=[
                    ToolCall(id="call_1", function=FunctionCall("get_weather", '{"city": "Oslo"}'))
                ],
            ),
            finish="tool_calls",
            reasoning=3,
        ),
        [],
    )
    parsed = sdk_message(message)
    thinking, text, tool = parsed.content
    assert thinking.type == "thinking" and thinking.thinking == "Need weather."
    assert thinking.signature == "sig"
    assert text.type == "text" and text.text == "Let me check."
    assert tool.type == "tool_use" and tool.id == "call_1" and tool.input == {"city": "Oslo"}
    assert parsed.stop_reason == "tool_use" and parsed.id == "gen-1"
    assert parsed.usage.output_tokens_details is not None
    assert parsed.usage.output_tokens_details.thinking_tokens == 3
    raw = json.loads(encode(message), parse_float=Decimal)
    assert raw["provider"] == "OpenAI" and raw["usage"]["cost"] == Decimal("0.000012345678901234")


def test_reasoning_without_details_and_redacted_thinking() -> None:
    plain = to_messages_result(result(ResponseMessage(content="A", reasoning="hmm")), [])
    assert plain.content[0] == am.ThinkingBlock(thinking="hmm", signature="")
    redacted = to_messages_result(
        result(
            ResponseMessage(
                content="A", reasoning_details=[{"type": "reasoning.encrypted", "data": "xyz"}]
            )
        ),
        [],
    )
    assert sdk_message(redacted).content[0].type == "redacted_thinking"


def test_usage_separates_cached_tokens() -> None:
    message = to_messages_result(
        result(ResponseMessage(content="A"), prompt=100, completion=5, cached=60), []
    )
    usage = sdk_message(message).usage
    assert usage.input_tokens == 40 and usage.cache_read_input_tokens == 60
    assert usage.output_tokens == 5 and usage.cache_creation_input_tokens == 0


@pytest.mark.parametrize(
    ("finish", "native", "stops", "expected"),
    [
        ("stop", "stop", [], ("end_turn", None)),
        ("length", "length", [], ("max_tokens", None)),
        ("tool_calls", "tool_calls", [], ("tool_use", None)),
        ("content_filter", "content_filter", [], ("refusal", None)),
        ("stop", "stop_sequence", ["END"], ("stop_sequence", "END")),
        ("stop", "stop_sequence", ["A", "B"], ("stop_sequence", None)),
        ("stop", "stop", ["END"], ("end_turn", None)),
        (None, None, [], ("end_turn", None)),
    ],
)
def test_stop_reasons(
    finish: str | None, native: str | None, stops: list[str], expected: tuple[str, str | None]
) -> None:
    assert stop_reason(finish, native, stops) == expected


def test_tool_calls_mean_tool_use_whatever_the_finish_reason() -> None:
    message = to_messages_result(
        result(ResponseMessage(tool_calls=[ToolCall(id="c", function=FunctionCall("f", "{}"))])),
        [],
    )
    assert message.stop_reason == "tool_use"


def test_tool_input_keeps_unparsable_arguments() -> None:
    assert tool_input('{"a": 1}') == {"a": 1}
    assert tool_input("") == {}
    assert tool_input('{"a": ') == {"_raw_arguments": '{"a": '}
    assert tool_input("[1]") == {"_raw_arguments": "[1]"}


# --- stream -------------------------------------------------------------------------------


def chunk(delta: Delta, finish: str | None = None) -> ChatChunk:
    return ChatChunk(
        id="gen-9",
        created=1,
        model="m",
        choices=[
            StreamChoice(index=0, delta=delta, finish_reason=finish, native_finish_reason=finish)
        ],
    )


def usage_chunk(prompt: int = 12, completion: int = 4) -> ChatChunk:
    return ChatChunk(
        id="gen-9",
        created=1,
        model="m",
        choices=[],
        usage=Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
        openrouter_metadata={"attempts": 1},
    )


def run(items: list[ChatChunk | None], stops: list[str] | None = None) -> list[dict[str, Any]]:
    stream = MessagesStream(
        "gen-9", "openai/gpt-4o", "OpenAI", input_tokens=12, stop_sequences=stops
    )
    events = stream.start()
    for item in items:
        events.extend(stream.feed(item))
    return [json.loads(encode(event)) for event in events]


def summary(events: list[dict[str, Any]]) -> list[str]:
    """One line per event: its type, plus the block kind or delta kind it carries."""
    out = []
    for e in events:
        kind = e["type"]
        if kind == "content_block_start":
            out.append(f"start {e['index']} {e['content_block']['type']}")
        elif kind == "content_block_delta":
            out.append(f"delta {e['index']} {e['delta']['type']}")
        elif kind == "content_block_stop":
            out.append(f"stop {e['index']}")
        else:
            out.append(kind)
    return out


def replay(events: list[dict[str, Any]]) -> anthropic.types.Message:
    """Feed the events through the SDK's own validation and accumulation."""
    snapshot = None
    buffers: dict[int, bytes] = {}
    for data in events:
        if data["type"] in ("ping", "error"):
            continue
        event = SDK_EVENT.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    return anthropic.types.Message.model_validate(snapshot.model_dump())


def test_text_stream_event_sequence() -> None:
    events = run(
        [
            None,
            chunk(Delta(role="assistant", content="")),
            chunk(Delta(content="Hel")),
            chunk(Delta(content="lo")),
            chunk(Delta(), finish="stop"),
            usage_chunk(),
        ]
    )
    assert summary(events) == [
        "message_start",
        "ping",
        "start 0 text",
        "delta 0 text_delta",
        "delta 0 text_delta",
        "stop 0",
        "message_delta",
        "message_stop",
    ]
    start = events[0]["message"]
    assert start["id"] == "gen-9" and start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 12 and start["usage"]["output_tokens"] == 0
    assert events[-2]["delta"] == {
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
    }
    assert events[-2]["usage"]["output_tokens"] == 4
    assert events[-1] == {"type": "message_stop", "openrouter_metadata": {"attempts": 1}}
    final = replay(events)
    assert final.content[0].type == "text" and final.content[0].text == "Hello"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4


def test_tool_calls_split_across_chunks() -> None:
    events = run(
        [
            chunk(Delta(content="Checking.")),
            chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=0,
                            id="call_a",
                            type="function",
                            function=FunctionCallDelta(name="get_weather", arguments=""),
                        )
                    ]
                )
            ),
            chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(index=0, function=FunctionCallDelta(arguments='{"ci'))
                    ]
                )
            ),
            chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(index=0, function=FunctionCallDelta(arguments='ty": "Oslo"}'))
                    ]
                )
            ),
            # The second call's id comes first, its name one chunk later.
            chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=1, id="call_b", function=FunctionCallDelta(arguments='{"city"')
                        )
                    ]
                )
            ),
            chunk(
                Delta(
                    tool_calls=[
                        ToolCallDelta(
                            index=1,
                            function=FunctionCallDelta(name="get_weather", arguments=': "Rome"}'),
                        )
                    ]
                )
            ),
            chunk(Delta(), finish="tool_calls"),
            usage_chunk(),
        ]
    )
    assert summary(events) == [
        "message_start",
        "start 0 text",
        "delta 0 text_delta",
        "stop 0",
        "start 1 tool_use",
        "delta 1 input_json_delta",
        "delta 1 input_json_delta",
        "stop 1",
        "start 2 tool_use",
        "delta 2 input_json_delta",
        "delta 2 input_json_delta",
        "stop 2",
        "message_delta",
        "message_stop",
    ]
    assert events[4]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
        "caller": {"type": "direct"},
    }
    final = replay(events)
    calls = [block for block in final.content if block.type == "tool_use"]
    assert [(c.id, c.input) for c in calls] == [
        ("call_a", {"city": "Oslo"}),
        ("call_b", {"city": "Rome"}),
    ]
    assert final.stop_reason == "tool_use"


def test_reasoning_then_text_with_signature() -> None:
    events = run(
        [
            chunk(
                Delta(
                    reasoning="Think",
                    reasoning_details=[{"type": "reasoning.text", "text": "Think"}],
                )
            ),
            chunk(
                Delta(
                    reasoning="ing.", reasoning_details=[{"type": "reasoning.text", "text": "ing."}]
                )
            ),
            chunk(Delta(reasoning_details=[{"type": "reasoning.text", "signature": "sig-xyz"}])),
            chunk(
                Delta(
                    reasoning="More",
                    reasoning_details=[{"type": "reasoning.encrypted", "data": "enc"}],
                )
            ),
            chunk(Delta(reasoning="Plain reasoning")),
            chunk(Delta(content="Answer.")),
            chunk(Delta(), finish="stop"),
            usage_chunk(),
        ]
    )
    assert summary(events) == [
        "message_start",
        "start 0 thinking",
        "delta 0 thinking_delta",
        "delta 0 thinking_delta",
        "delta 0 signature_delta",
        "stop 0",
        "start 1 redacted_thinking",
        "stop 1",
        "start 2 thinking",
        "delta 2 thinking_delta",
        "stop 2",
        "start 3 text",
        "delta 3 text_delta",
        "stop 3",
        "message_delta",
        "message_stop",
    ]
    final = replay(events)
    first, redacted, second, text = final.content
    assert (
        first.type == "thinking" and first.thinking == "Thinking." and first.signature == "sig-xyz"
    )
    assert redacted.type == "redacted_thinking" and redacted.data == "enc"
    assert second.type == "thinking" and second.thinking == "Plain reasoning"
    assert text.type == "text" and text.text == "Answer."


def test_stop_sequence_and_length_in_stream() -> None:
    matched = chunk(Delta(content="x"), finish="stop")
    matched.choices[0].native_finish_reason = "stop_sequence"
    events = run([matched, usage_chunk()], stops=["###"])
    assert events[-2]["delta"]["stop_reason"] == "stop_sequence"
    assert events[-2]["delta"]["stop_sequence"] == "###"
    events = run([chunk(Delta(content="x"), finish="length"), usage_chunk()])
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


def test_upstream_failure_mid_stream_is_an_error_event() -> None:
    failed = chunk(Delta(content=""), finish="error")
    failed.error = StreamError(code=502, message="OpenAI closed the connection")
    stream = MessagesStream("gen-9", "m")
    events = stream.start() + stream.feed(chunk(Delta(content="Hi"))) + stream.feed(failed)
    assert [type(e).__name__ for e in events][-1] == "ErrorEvent"
    assert json.loads(encode(events[-1])) == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "OpenAI closed the connection",
            "error_type": "provider_unavailable",
        },
    }
    assert stream.feed(usage_chunk()) == []  # nothing follows an error


def test_empty_stream_still_completes() -> None:
    events = run([chunk(Delta(), finish="stop"), usage_chunk(completion=0)])
    assert summary(events) == ["message_start", "message_delta", "message_stop"]
    assert replay(events).content == []


def test_event_frames_are_named() -> None:
    assert event_frame(am.PingEvent()) == b'event: ping\ndata: {"type":"ping"}\n\n'
    frame = event_frame(am.ContentBlockStopEvent(index=3))
    assert frame == b'event: content_block_stop\ndata: {"type":"content_block_stop","index":3}\n\n'


# --- errors -------------------------------------------------------------------------------


def test_error_bodies_take_the_anthropic_shape() -> None:
    body = json.loads(error_body(InvalidRequest("Bad `max_tokens`", field="max_tokens"), "gen-1"))
    assert body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "Bad `max_tokens`",
            "error_type": "invalid_request",
        },
        "request_id": "gen-1",
        "metadata": {"field": "max_tokens"},
    }
    assert (
        json.loads(error_body(Unauthorized("no"), None))["error"]["type"] == "authentication_error"
    )
    assert json.loads(error_body(RateLimited("slow"), None))["error"]["type"] == "rate_limit_error"
    upstream = json.loads(
        error_body(UpstreamError("down", provider="OpenAI", upstream_status=500), None)
    )
    assert upstream["error"]["type"] == "api_error"
    assert upstream["metadata"] == {"provider_name": "OpenAI", "upstream_status": 500}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (408, "timeout_error"),
        (413, "invalid_request_error"),
        (503, "overloaded_error"),
        (418, "invalid_request_error"),
        (507, "api_error"),
    ],
)
def test_status_to_error_type(status: int, kind: str) -> None:
    from switchyard.errors import SwitchyardError

    body = json.loads(error_body(SwitchyardError("x", status=status), None))
    assert body["error"]["type"] == kind
