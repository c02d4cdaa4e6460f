"""The Responses surface: requests to chat requests, chat results and chunk streams back.

Every object produced is validated with the openai SDK's own pydantic types, and streams are
replayed through the SDK's ``responses.stream()`` accumulator, which checks event order.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from switchyard.errors import InvalidRequest
from switchyard.surfaces.responses import from_result, response_id
from switchyard.surfaces.responses_request import Translation, to_chat
from switchyard.surfaces.responses_stream import ResponseStream
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatResult,
    Choice,
    CompletionTokensDetails,
    CostDetails,
    Delta,
    DeveloperMessage,
    FunctionCall,
    FunctionCallDelta,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    NamedToolChoice,
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
from switchyard.wire.responses import ResponseEvent, ResponsesRequest

GEN = "gen-1700000000-0123456789abcdef0123"
EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def translate(**body: Any) -> Translation:
    body.setdefault("model", "openai/gpt-4o")
    body.setdefault("input", "Hello")
    return to_chat(decode_request(json.dumps(body).encode(), ResponsesRequest))


def refused(**body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        translate(**body)
    return caught.value


# --- requests -------------------------------------------------------------------------------


def test_string_input_and_instructions() -> None:
    t = translate(input="What is 2+2?", instructions="Be terse.")
    assert t.chat.messages == [
        SystemMessage(content="Be terse."),
        UserMessage(content="What is 2+2?"),
    ]
    assert t.chat.model == "openai/gpt-4o" and t.chat.stream is False


def test_messages_with_and_without_type_and_their_parts() -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    t = translate(
        input=[
            {"role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                    {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"},
                ],
            },
        ]
    )
    developer, user = t.chat.messages
    assert developer == DeveloperMessage(content=[TextPart(text="Rules.")])
    assert isinstance(user, UserMessage) and isinstance(user.content, list)
    text, first, second = user.content
    assert text == TextPart(text="What is this?")
    assert isinstance(first, ImagePart) and first.image_url.url == image
    assert first.image_url.detail == "low"
    assert isinstance(second, ImagePart) and second.image_url.url == "https://x.test/a.png"


def test_previous_output_becomes_one_assistant_turn() -> None:
    """Reasoning, text and function calls the model produced are one chat assistant turn."""
    t = translate(
        input=[
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Need both cities."}],
                "encrypted_content": "opaque",
            },
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
                "status": "completed",
            },
            {
                "type": "function_call",
                "call_id": "call_b",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_a", "output": "-3C"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [{"type": "input_text", "text": "18C"}],
            },
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER],
    )
    user, assistant, out_a, out_b, thanks = t.chat.messages
    assert isinstance(user, UserMessage) and isinstance(thanks, UserMessage)
    assert isinstance(assistant, AssistantMessage)
    assert assistant.content == "Checking."
    assert assistant.reasoning == "Need both cities."
    assert assistant.reasoning_details == [
        {"type": "reasoning.summary", "summary": "Need both cities.", "id": "rs_1"},
        {"type": "reasoning.encrypted", "data": "opaque", "id": "rs_1"},
    ]
    assert [(c.id, c.function.arguments) for c in assistant.tool_calls or ()] == [
        ("call_a", '{"city":"Oslo"}'),
        ("call_b", '{"city":"Rome"}'),
    ]
    assert out_a == ToolMessage(content="-3C", tool_call_id="call_a")
    assert out_b == ToolMessage(content=[TextPart(text="18C")], tool_call_id="call_b")


def test_reasoning_text_is_kept_as_reasoning() -> None:
    t = translate(
        input=[
            {"role": "user", "content": "2+2?"},
            {
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "Add them."}],
            },
            {"role": "assistant", "content": "4"},
        ]
    )
    _, assistant = t.chat.messages
    assert isinstance(assistant, AssistantMessage)
    assert (assistant.reasoning, assistant.content) == ("Add them.", "4")
    assert assistant.reasoning_details == [{"type": "reasoning.text", "text": "Add them."}]


def test_a_second_assistant_message_starts_a_new_turn() -> None:
    t = translate(
        input=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "one"},
            {"role": "assistant", "content": "two"},
        ]
    )
    assert [m.content for m in t.chat.messages] == ["a", "one", "two"]


def test_tools_tool_choice_and_formats() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    t = translate(
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        text={
            "format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True},
            "verbosity": "low",
        },
    )
    (tool,) = t.chat.tools or ()
    assert tool.function.name == "get_weather" and tool.function.strict is True
    assert tool.function.parameters == WEATHER["parameters"]
    assert tool.function.description == "Weather for a city"
    assert isinstance(t.chat.tool_choice, NamedToolChoice)
    assert t.chat.tool_choice.function.name == "get_weather"
    assert t.chat.parallel_tool_calls is False
    fmt = t.chat.response_format
    assert isinstance(fmt, JsonSchemaFormat)
    assert (fmt.json_schema.name, fmt.json_schema.schema, fmt.json_schema.strict) == (
        "out",
        schema,
        True,
    )
    assert t.chat.verbosity == "low"
    assert isinstance(
        translate(text={"format": {"type": "json_object"}}).chat.response_format, JsonObjectFormat
    )
    assert translate(text={"format": {"type": "text"}}).chat.response_format is msgspec.UNSET


def test_allowed_tools_narrow_the_tool_list() -> None:
    other = {**WEATHER, "name": "get_time"}
    t = translate(
        tools=[WEATHER, other],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "get_time"}],
        },
    )
    assert [tool.function.name for tool in t.chat.tools or ()] == ["get_time"]
    assert t.chat.tool_choice == "required"
    # The response still lists every tool the client declared, and its choice.
    echoed = SDKResponse.model_validate_json(
        encode(from_result(result(ResponseMessage(content="x")), t, GEN, 1))
    )
    assert [tool.name for tool in echoed.tools] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert echoed.tool_choice.type == "allowed_tools"  # type: ignore[union-attr]


def test_sampling_limits_and_openrouter_fields_pass_through() -> None:
    t = translate(
        max_output_tokens=64,
        temperature=0.3,
        top_p=0.9,
        top_logprobs=2,
        reasoning={"effort": "high", "summary": "auto"},
        metadata={"k": "v"},
        user="u-1",
        session_id="s-1",
        models=["openai/gpt-4o", "local/smollm2-135m-instruct"],
        provider={"sort": "price"},
        store=True,
        stream=True,
    )
    chat = t.chat
    assert chat.max_tokens == 64 and chat.output_limit() == 64
    assert (chat.temperature, chat.top_p) == (0.3, 0.9)
    assert chat.logprobs is True and chat.top_logprobs == 2 and t.want_logprobs
    assert chat.reasoning is not msgspec.UNSET and chat.reasoning.effort == "high"
    assert chat.metadata == {"k": "v"} and chat.user == "u-1" and chat.session_id == "s-1"
    assert chat.models == ["openai/gpt-4o", "local/smollm2-135m-instruct"]
    assert chat.provider is not None and chat.provider is not msgspec.UNSET
    assert chat.provider.sort == "price"
    assert chat.stream is True
    # Nothing Responses-only leaks into what the chat service forwards upstream.
    sent = msgspec.json.decode(encode(chat))
    assert not {"input", "instructions", "store", "max_output_tokens", "text"} & set(sent)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"background": True}, "background"),
        ({"input": []}, "input"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"content": "no role"}]}, "input[0].role"),
        ({"input": [{"role": "user"}]}, "input[0].content"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]},
            "input[0].name",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {
                "input": [
                    {
                        "role": "system",
                        "content": [{"type": "input_image", "image_url": "https://x/y.png"}],
                    }
                ]
            },
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_video", "video_url": "x"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"type": "reasoning", "content": [{"type": "input_text", "text": "x"}]}]},
            "input[0].content[0]",
        ),
        ({"tools": [WEATHER, {"type": "web_search_preview"}]}, "tools[1].type"),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "x"}},
            "tool_choice.name",
        ),
        ({"tools": [WEATHER], "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "tools": []}},
            "tool_choice.mode",
        ),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"temperature": 3}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_bad_requests_name_the_responses_field(body: dict[str, Any], field: str) -> None:
    error = refused(**body)
    assert error.status == 400 and error.field == field
    assert error.to_dict()["error"]["metadata"]["field"] == field


def test_stateless_refusals_say_why() -> None:
    assert "stateless" in refused(previous_response_id="resp_1").message


def test_chat_service_errors_are_renamed_to_responses_fields() -> None:
    t = translate(
        instructions="sys",
        input=[
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x/y"}]},
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [{"type": "input_image", "image_url": "ftp://x/z"}],
            },
        ],
        tools=[WEATHER],
    )

    def renamed(field: str) -> str | None:
        return t.rename(InvalidRequest(f"`{field}` is wrong", field=field)).field

    # messages[0] is the instructions, so chat indices are one ahead of input indices.
    assert renamed("messages[2].content[0].image_url.url") == "input[1].content[0].image_url"
    assert renamed("messages[3].content[0].image_url.url") == "input[2].output[0].image_url"
    assert renamed("messages[0].content") == "instructions"
    assert renamed("messages") == "input"
    assert renamed("max_tokens") == "max_output_tokens"
    assert renamed("tools[0].function.name") == "tools[0].name"
    assert renamed("tool_choice.function.name") == "tool_choice.name"
    assert renamed("provider.sort") == "provider.sort"
    error = t.rename(InvalidRequest("`max_tokens` is too big", field="max_tokens"))
    assert error.message == "`max_output_tokens` is too big"


# --- results --------------------------------------------------------------------------------


def usage(prompt: int = 12, completion: int = 7, **extra: Any) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        **extra,
    )


def result(message: ResponseMessage, finish: str = "stop", **extra: Any) -> ChatResult:
    return ChatResult(
        id=GEN,
        created=1700000000,
        model="openai/gpt-4o",
        choices=[Choice(index=0, message=message, finish_reason=finish, **extra)],
        usage=usage(
            prompt_tokens_details=PromptTokensDetails(cached_tokens=4),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=2),
            cost=Decimal("0.0000123"),
            is_byok=False,
            cost_details=CostDetails(
                upstream_inference_prompt_cost=Decimal("0.00001"),
                upstream_inference_completions_cost=Decimal("0.0000023"),
            ),
        ),
    )


def sdk_response(t: Translation, chat: ChatResult) -> tuple[SDKResponse, dict[str, Any]]:
    body = encode(from_result(chat, t, GEN, 1700000000))
    return SDKResponse.model_validate_json(body), json.loads(body, parse_float=Decimal)


def test_text_result() -> None:
    t = translate(instructions="Be nice.", temperature=0.2, max_output_tokens=50)
    response, raw = sdk_response(t, result(ResponseMessage(content="Hi there")))
    assert response.id == response_id(GEN) == "resp_1700000000-0123456789abcdef0123"
    assert response.object == "response" and response.status == "completed"
    assert response.created_at == 1700000000 and response.completed_at
    assert response.model == "openai/gpt-4o" and response.output_text == "Hi there"
    (message,) = response.output
    assert message.type == "message" and message.status == "completed"
    assert message.id.startswith("msg_")
    # The request's parameters are echoed.
    assert response.instructions == "Be nice." and response.temperature == 0.2
    assert response.max_output_tokens == 50 and response.tool_choice == "auto"
    assert response.text is not None and response.text.format.type == "text"
    assert response.store is False and response.previous_response_id is None
    # Usage in Responses terms, with OpenRouter's exact cost as a number.
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 7)
    assert response.usage.total_tokens == 19
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    assert raw["usage"]["cost"] == Decimal("0.0000123")
    assert raw["usage"]["cost_details"] == {
        "upstream_inference_input_cost": Decimal("0.00001"),
        "upstream_inference_output_cost": Decimal("0.0000023"),
        "upstream_inference_cost": None,
    }
    # The spec's required fields are all present, null or not.
    for name in ("error", "incomplete_details", "top_p", "metadata", "presence_penalty"):
        assert name in raw and raw[name] is None


def test_function_call_result() -> None:
    t = translate(tools=[WEATHER])
    calls = [
        ToolCall(
            id="call_1", function=FunctionCall(name="get_weather", arguments='{"city":"Oslo"}')
        )
    ]
    response, _ = sdk_response(t, result(ResponseMessage(tool_calls=calls), "tool_calls"))
    assert response.status == "completed"
    (call,) = response.output
    assert call.type == "function_call" and call.call_id == "call_1"
    assert call.name == "get_weather" and call.arguments == '{"city":"Oslo"}'
    assert call.id is not None and call.id.startswith("fc_") and call.status == "completed"
    assert [tool.name for tool in response.tools] == ["get_weather"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_short_results_are_incomplete(finish: str, reason: str) -> None:
    response, _ = sdk_response(translate(), result(ResponseMessage(content="Hal"), finish))
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == reason
    assert response.output[-1].status == "incomplete"  # type: ignore[union-attr]


def test_reasoning_refusal_annotations_and_logprobs() -> None:
    message = ResponseMessage(
        content="Paris.",
        refusal="",
        reasoning="The capital of France is Paris.",
        reasoning_details=[
            {"type": "reasoning.summary", "summary": "Recalled a capital."},
            {"type": "reasoning.encrypted", "data": "c2VjcmV0"},
        ],
        annotations=[
            {
                "type": "url_citation",
                "url_citation": {
                    "url": "https://en.wikipedia.org/wiki/Paris",
                    "title": "Paris",
                    "start_index": 0,
                    "end_index": 5,
                },
            }
        ],
    )
    logprobs = {
        "content": [{"token": "Paris.", "logprob": -0.1, "bytes": [80], "top_logprobs": []}]
    }
    t = translate(top_logprobs=0)
    response, _ = sdk_response(t, result(message, logprobs=logprobs))
    reasoning, answer = response.output
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["Recalled a capital."]
    assert reasoning.content is not None
    assert reasoning.content[0].text == "The capital of France is Paris."
    assert reasoning.encrypted_content == "c2VjcmV0"
    assert answer.type == "message"
    (text,) = answer.content
    assert text.type == "output_text"
    assert text.annotations[0].type == "url_citation"
    assert text.annotations[0].url == "https://en.wikipedia.org/wiki/Paris"  # type: ignore[union-attr]
    assert text.logprobs is not None and text.logprobs[0].token == "Paris."

    refusal, _ = sdk_response(translate(), result(ResponseMessage(refusal="I can't help.")))
    (message_item,) = refusal.output
    assert message_item.type == "message"
    assert [part.type for part in message_item.content] == ["refusal"]


def test_signed_reasoning_survives_a_round_trip() -> None:
    """Anthropic-style signed thinking goes out with OpenRouter's signature and format
    fields, and comes back as the same reasoning detail."""
    detail = {
        "type": "reasoning.text",
        "text": "Think.",
        "signature": "sig-1",
        "format": "anthropic-claude-v1",
    }
    message = ResponseMessage(content="Done.", reasoning="Think.", reasoning_details=[detail])
    response, raw = sdk_response(translate(), result(message))
    item = raw["output"][0]
    assert (item["type"], item["signature"], item["format"]) == (
        "reasoning",
        "sig-1",
        "anthropic-claude-v1",
    )
    assert [s.text for s in response.output[0].summary] == ["Think."]  # type: ignore[union-attr]
    again = translate(input=[{"role": "user", "content": "Go"}, *raw["output"]])
    assistant = again.chat.messages[1]
    assert isinstance(assistant, AssistantMessage) and assistant.content == "Done."
    assert assistant.reasoning_details == [{**detail, "id": item["id"]}]


def test_empty_result_still_has_a_message() -> None:
    response, _ = sdk_response(translate(), result(ResponseMessage(content=None)))
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text == ""


# --- streams --------------------------------------------------------------------------------


def chunk(
    finish: str | None = None, logprobs: dict[str, Any] | None = None, **delta: Any
) -> ChatChunk:
    choice = StreamChoice(index=0, delta=Delta(**delta), finish_reason=finish, logprobs=logprobs)
    return ChatChunk(id=GEN, created=1700000000, model="openai/gpt-4o", choices=[choice])


def last_chunk(**extra: Any) -> ChatChunk:
    return ChatChunk(
        id=GEN, created=1700000000, model="openai/gpt-4o", choices=[], usage=usage(), **extra
    )


def call(
    index: int, id: str | None = None, name: str | None = None, args: str | None = None
) -> ToolCallDelta:
    function = FunctionCallDelta(
        name=name if name is not None else msgspec.UNSET,
        arguments=args if args is not None else msgspec.UNSET,
    )
    return ToolCallDelta(index=index, id=id if id is not None else msgspec.UNSET, function=function)


def run(t: Translation, chunks: list[ChatChunk]) -> list[Any]:
    """Stream ``chunks``; every event is checked with the SDK's types and accumulator."""
    stream = ResponseStream(t, GEN, "openai/gpt-4o", 1700000000)
    events: list[ResponseEvent] = stream.start()
    for c in chunks:
        events.extend(stream.feed(c))
    parsed = [EVENT.validate_json(encode(e)) for e in events]
    assert [e.type for e in parsed] == [e.__struct_config__.tag for e in events]
    assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
    # The SDK's responses.stream() helper raises on any out-of-order or unmatched event.
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in parsed:
        state.handle_event(event)
    return parsed


def test_text_stream_event_sequence() -> None:
    events = run(
        translate(),
        [
            chunk(role="assistant", content=""),
            chunk(content="Hel"),
            chunk(content="lo"),
            chunk(finish="stop"),
            last_chunk(),
        ],
    )
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created, in_progress = events[0], events[1]
    assert created.response.status == "in_progress" and created.response.output == []
    assert created.response.usage is None and in_progress.response.id == created.response.id
    item_id = events[2].item.id
    assert all(e.item_id == item_id for e in events[3:8])
    assert events[6].text == "Hello"
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "Hello"
    assert final.output[0].id == item_id and final.usage.total_tokens == 19


def test_reasoning_then_text_then_tool_calls_split_across_chunks() -> None:
    events = run(
        translate(tools=[WEATHER]),
        [
            chunk(role="assistant", reasoning="Two "),
            chunk(
                reasoning="cities.",
                reasoning_details=[{"type": "reasoning.encrypted", "data": "xyz"}],
            ),
            chunk(content="Checking."),
            chunk(tool_calls=[call(0, "call_a", "get_weather", "")]),
            chunk(tool_calls=[call(0, args='{"city"')]),
            chunk(tool_calls=[call(1, "call_b", "get_weather", '{"ci')]),
            chunk(tool_calls=[call(0, args=':"Oslo"}')]),  # interleaved with call 1
            chunk(tool_calls=[call(1, args='ty":"Rome"}')], finish="tool_calls"),
            last_chunk(),
        ],
    )
    kinds = [e.type for e in events]
    assert kinds[:9] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [
        (0, "reasoning"),
        (1, "message"),
        (2, "function_call"),
        (3, "function_call"),
    ]
    # Each item is done before the next one is added (function calls may interleave).
    message_done = kinds.index("response.output_item.done", 9)
    assert events[message_done].item.type == "message"
    assert message_done < kinds.index("response.function_call_arguments.delta")
    done_args = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.output_index, e.arguments) for e in done_args] == [
        (2, '{"city":"Oslo"}'),
        (3, '{"city":"Rome"}'),
    ]
    final = events[-1].response
    reasoning, message, call_a, call_b = final.output
    assert [s.text for s in reasoning.summary] == ["Two cities."]
    assert reasoning.encrypted_content == "xyz"
    assert message.content[0].text == "Checking."
    assert (call_a.call_id, call_a.name, json.loads(call_a.arguments)) == (
        "call_a",
        "get_weather",
        {"city": "Oslo"},
    )
    assert call_b.call_id == "call_b" and json.loads(call_b.arguments) == {"city": "Rome"}
    assert final.status == "completed"


def test_reasoning_details_without_text_still_make_a_reasoning_item() -> None:
    encrypted = {"type": "reasoning.encrypted", "data": "opaque"}
    events = run(
        translate(),
        [chunk(reasoning_details=[encrypted]), chunk(content="Hi"), last_chunk()],
    )
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    reasoning, message = events[-1].response.output
    assert reasoning.encrypted_content == "opaque" and reasoning.summary == []
    assert message.content[0].text == "Hi"


def test_streamed_signature_lands_on_the_reasoning_item() -> None:
    signed = {"type": "reasoning.text", "text": "", "signature": "sig-9", "format": "x"}
    events = run(
        translate(),
        [
            chunk(reasoning="Hmm."),
            chunk(reasoning_details=[signed]),
            chunk(content="Ok"),
            last_chunk(),
        ],
    )
    reasoning = events[-1].response.output[0]
    assert reasoning.model_extra["signature"] == "sig-9"
    assert [s.text for s in reasoning.summary] == ["Hmm."]


def test_length_stops_make_an_incomplete_stream() -> None:
    events = run(translate(), [chunk(content="Hal"), chunk(finish="length"), last_chunk()])
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.incomplete_details.reason == "max_output_tokens"
    assert final.response.output[0].status == "incomplete"
    item_done = [e for e in events if e.type == "response.output_item.done"]
    assert item_done[0].item.status == "incomplete"


@pytest.mark.parametrize(("status", "code"), [(502, "server_error"), (429, "rate_limit_exceeded")])
def test_mid_stream_error_fails_the_response(status: int, code: str) -> None:
    broken = ChatChunk(
        id=GEN,
        created=1700000000,
        model="openai/gpt-4o",
        choices=[StreamChoice(index=0, delta=Delta(content=""), finish_reason="error")],
        error=StreamError(code=status, message="Upstream went away"),
    )
    events = run(translate(), [chunk(content="Hal"), broken])
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error.code == code
    assert failed.response.error.message == "Upstream went away"
    assert failed.response.output_text == "Hal"
    assert failed.response.output[0].status == "incomplete"
    assert events[-2].type == "response.output_item.done"


def test_empty_stream_answers_with_an_empty_message() -> None:
    events = run(
        translate(), [chunk(role="assistant", content=""), chunk(finish="stop"), last_chunk()]
    )
    final = events[-1].response
    assert [item.type for item in final.output] == ["message"] and final.output_text == ""
    assert "response.output_text.delta" not in [e.type for e in events]


def test_refusal_stream() -> None:
    events = run(translate(), [chunk(refusal="I can't"), chunk(refusal=" do that."), last_chunk()])
    kinds = [e.type for e in events]
    assert kinds.count("response.refusal.delta") == 2 and "response.refusal.done" in kinds
    final = events[-1].response
    assert final.output[0].content[0].refusal == "I can't do that."


def test_stream_logprobs_only_when_asked() -> None:
    lp = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]}
    asked = run(translate(top_logprobs=0), [chunk(content="Hi", logprobs=lp), last_chunk()])
    delta = next(e for e in asked if e.type == "response.output_text.delta")
    assert delta.logprobs[0].token == "Hi"
    assert asked[-1].response.output[0].content[0].logprobs[0].logprob == -0.5
    plain = run(translate(), [chunk(content="Hi"), last_chunk()])
    assert plain[-1].response.output[0].content[0].logprobs is None


def test_metadata_and_nothing_after_the_end() -> None:
    stream = ResponseStream(translate(), GEN, "openai/gpt-4o", 1700000000)
    stream.start()
    stream.feed(chunk(content="x"))
    end = stream.feed(last_chunk(openrouter_metadata={"strategy": "direct"}))
    assert encode(end[-1]).count(b'"openrouter_metadata":{"strategy":"direct"}') == 1
    assert stream.feed(chunk(content="late")) == []
