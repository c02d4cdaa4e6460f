"""The official anthropic SDK, pointed at a running Switchyard's /api/v1/messages."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

from tests.servers import RunningServer
from tests.simulators.openai_sim import DEFAULT_REPLY, SimulatorHandle

LOCAL = "local/smollm2-135m-instruct"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)
GPT = "openai/gpt-4o-mini-2024-07-18"
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client(server: RunningServer, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("api_key", server.api_key)
    return anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{server.port}/api", max_retries=0, timeout=60, **kw
    )


def generation(server: RunningServer, generation_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.base_url}/generation",
        params={"id": generation_id},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = json.loads(response.text, parse_float=Decimal)["data"]
    return data


def usage_provider(message: anthropic.types.Message) -> str:
    assert message.model_extra is not None
    provider: str = message.model_extra["provider"]
    return provider


def sse(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of an Anthropic stream."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


# --- the embedded model ---------------------------------------------------------------------


def test_local_model_answers(server: RunningServer) -> None:
    raw = client(server).messages.with_raw_response.create(
        model=LOCAL,
        max_tokens=12,
        extra_body={"temperature": 0},  # this SDK version no longer has the parameter
        messages=[{"role": "user", "content": "Say hello."}],
    )
    message = raw.parse()
    assert raw.headers["x-generation-id"] == message.id and message.id.startswith("gen-")
    assert raw.headers["request-id"] == message.id
    assert message.type == "message" and message.role == "assistant"
    assert message.model == LOCAL
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 10 and 0 < message.usage.output_tokens <= 12
    # Accounted like a chat completion: one generation record with the same token counts.
    record = generation(server, message.id)
    assert record["model"] == LOCAL and record["streamed"] is False
    assert record["tokens_prompt"] == message.usage.input_tokens
    assert record["tokens_completion"] == message.usage.output_tokens
    assert record["total_cost"] == 0


def test_local_model_streams(server: RunningServer) -> None:
    with client(server).messages.stream(
        model=LOCAL,
        max_tokens=10,
        extra_body={"temperature": 0},  # this SDK version no longer has the parameter
        messages=[{"role": "user", "content": "Count to five."}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() and final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert 0 < final.usage.output_tokens <= 10 and final.usage.input_tokens > 0
    record = generation(server, final.id)
    assert record["streamed"] is True
    assert record["tokens_completion"] == final.usage.output_tokens


def test_local_model_calls_a_tool(server: RunningServer) -> None:
    message = client(server).messages.create(
        model=LOCAL,
        max_tokens=40,
        extra_body={"temperature": 0},  # this SDK version no longer has the parameter
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    calls = [block for block in message.content if block.type == "tool_use"]
    assert message.stop_reason == "tool_use"
    assert len(calls) == 1 and calls[0].name == "get_weather" and "city" in calls[0].input


def test_local_model_calls_a_tool_streamed(server: RunningServer) -> None:
    with client(server).messages.stream(
        model=LOCAL,
        max_tokens=40,
        extra_body={"temperature": 0},  # this SDK version no longer has the parameter
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    calls = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use"
    assert len(calls) == 1 and calls[0].name == "get_weather" and "city" in calls[0].input


def test_pings_while_waiting_for_the_first_token(server: RunningServer) -> None:
    # A long prompt keeps the local model busy before its first token; the server's
    # keep-alive interval is 0.2 s in these tests.
    prompt = "The quick brown fox jumps over the lazy dog. " * 10
    with httpx.stream(
        "POST",
        f"{server.base_url}/messages",
        headers={"x-api-key": server.api_key, "anthropic-version": "2023-06-01"},
        timeout=60,
        json={
            "model": LOCAL,
            "stream": True,
            "max_tokens": 2,
            "messages": [{"role": "user", "content": prompt}],
        },
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(list(response.iter_lines()))
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    first_block = names.index("content_block_start")
    assert "ping" in names[1:first_block]
    assert all(data["type"] == name for name, data in events)


# --- simulated OpenAI -----------------------------------------------------------------------


def test_hosted_model_answers(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    message = client(server).messages.create(
        model=GPT,
        max_tokens=100,
        system="You are terse.",
        extra_body={"temperature": 0.5},
        stop_sequences=["\n\n"],
        metadata={"user_id": "user-7"},
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_REPLY
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    body = fresh_sim.requests()[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello"},
    ]
    assert body["max_tokens"] == 100 and body["temperature"] == 0.5
    assert body["stop"] == ["\n\n"] and body["user"] == "user-7"
    # Priced from the catalog: 0.15 and 0.60 USD per million tokens.
    usage = message.usage
    assert usage.output_tokens == 5 and usage.cache_read_input_tokens == 0
    expected = (Decimal(usage.input_tokens) * 15 + Decimal(usage.output_tokens) * 60) / 10**8
    assert usage.model_extra is not None
    assert Decimal(str(usage.model_extra["cost"])) == expected
    record = generation(server, message.id)
    assert record["total_cost"] == expected and record["external_user"] == "user-7"
    # This server routes GPT to OpenAI or Azure; the message names the one that served.
    assert record["provider_name"] == usage_provider(message) in ("OpenAI", "Azure")


def test_hosted_cached_tokens_are_not_input_tokens(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(cached_tokens=4)
    message = client(server).messages.create(
        model=GPT, max_tokens=50, messages=[{"role": "user", "content": "Hello there, friend"}]
    )
    record = generation(server, message.id)
    assert message.usage.cache_read_input_tokens == 4
    assert message.usage.input_tokens + 4 == record["tokens_prompt"]


def test_hosted_stream_and_tool_round_trip(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    sdk = client(server)
    question: Any = {"role": "user", "content": "Weather in Oslo?"}
    with sdk.messages.stream(
        model=GPT, max_tokens=200, tools=[WEATHER_TOOL], messages=[question]
    ) as stream:
        events = list(stream)
        first = stream.get_final_message()
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    deltas = [e for e in events if e.type == "content_block_delta"]
    # The simulator streams the arguments in several pieces: each is an input_json_delta.
    assert len(deltas) > 1 and all(d.delta.type == "input_json_delta" for d in deltas)
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "x"}

    answer = sdk.messages.create(
        model=GPT,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
        messages=[
            question,
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"},
                    {"type": "text", "text": "Summarise, please."},
                ],
            },
        ],
    )
    assert answer.content[0].type == "text" and answer.content[0].text == DEFAULT_REPLY
    assert answer.stop_reason == "end_turn"
    sent = fresh_sim.requests()[-1]["body"]
    assert sent["tool_choice"] == "none"
    assistant, tool, user = sent["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "x"}
    assert tool == {"role": "tool", "content": "Sunny, 21 C", "tool_call_id": call.id}
    assert user == {"role": "user", "content": "Summarise, please."}


def test_hosted_text_stream_usage(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    with client(server).messages.stream(
        model=GPT, max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == DEFAULT_REPLY
    assert final.usage.output_tokens == 5
    record = generation(server, final.id)
    assert record["streamed"] is True and record["tokens_completion"] == 5
    assert record["tokens_prompt"] == final.usage.input_tokens


def test_hosted_image_block(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    message = client(server).messages.create(
        model=GPT,
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            }
        ],
    )
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_REPLY
    sent = fresh_sim.requests()[-1]["body"]["messages"][0]["content"]
    assert sent == [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    # One image at 0.007225 USD on top of the tokens, as on chat completions.
    tokens = Decimal(message.usage.input_tokens) * 15 + Decimal(message.usage.output_tokens) * 60
    assert generation(server, message.id)["total_cost"] == tokens / 10**8 + Decimal("0.007225")


def test_routing_metadata_on_request(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    sdk = client(server, default_headers={"X-OpenRouter-Metadata": "enabled"})
    message = sdk.messages.create(
        model=GPT, max_tokens=50, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.model_extra is not None and "openrouter_metadata" in message.model_extra
    # The raw stream: the SDK's MessageStream rebuilds message_stop without extra fields.
    events = list(
        sdk.messages.create(
            model=GPT, max_tokens=50, stream=True, messages=[{"role": "user", "content": "Hello"}]
        )
    )
    last = events[-1]
    assert last.type == "message_stop"
    assert last.model_extra is not None and "openrouter_metadata" in last.model_extra
    plain = client(server).messages.create(
        model=GPT, max_tokens=50, messages=[{"role": "user", "content": "Hello"}]
    )
    assert "openrouter_metadata" not in (plain.model_extra or {})


def test_mid_stream_failure_is_an_error_event(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client(server).messages.stream(
            model=GPT, max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
        ) as stream,
    ):
        list(stream)
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert len(fresh_sim.requests()) == 1


# --- errors ---------------------------------------------------------------------------------


def test_invalid_request_is_a_bad_request_error(server: RunningServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(server).messages.create(
            model=GPT,
            max_tokens=10,
            messages=[
                {"role": "user", "content": [{"type": "video", "source": {}}]}  # type: ignore[list-item, typeddict-item]
            ],
        )
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["metadata"]["field"] == "messages[0].content[0].type"
    assert body["request_id"] is None


def test_misplaced_block_names_its_field(server: RunningServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(server).messages.create(
            model=GPT,
            max_tokens=10,
            messages=[
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_result", "tool_use_id": "x", "content": "y"}],
                },
            ],
        )
    body: Any = caught.value.body
    assert body["metadata"]["field"] == "messages[1].content[0].type"


def test_bad_key_is_an_authentication_error(server: RunningServer) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(server, api_key="sk-sy-v1-wrong").messages.create(
            model=GPT, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    body: Any = caught.value.body
    assert body == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "Invalid API key",
            "error_type": "authentication",
        },
        "request_id": None,
    }


def test_missing_key_names_both_headers(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.base_url}/messages",
        json={"model": GPT, "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=10,
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert "x-api-key" in error["message"] and "Authorization" in error["message"]


def test_bearer_token_is_accepted(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    sdk = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{server.port}/api",
        auth_token=server.api_key,
        api_key=None,
        max_retries=0,
    )
    message = sdk.messages.create(
        model=GPT, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.stop_reason == "max_tokens" or message.content


def test_unknown_model_is_a_bad_request(server: RunningServer) -> None:
    # As on chat completions (and OpenRouter): an unknown model id is a 400 naming `model`.
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(server).messages.create(
            model="nobody/nothing", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    body: Any = caught.value.body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["metadata"]["field"] == "model"
    # The generation id exists once the request is understood; errors after that carry it.
    assert body["request_id"].startswith("gen-")


def test_upstream_rate_limit_is_a_rate_limit_error(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "status", "status": 429, "retry_after": 7}, sticky=True)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(server).messages.create(
            model=GPT,
            max_tokens=10,
            messages=[{"role": "user", "content": "Hi"}],
            extra_body={"provider": {"only": ["openai"]}},
        )
    assert caught.value.response.headers["retry-after"] == "7"
    body: Any = caught.value.body
    assert body["error"]["type"] == "rate_limit_error"
    assert body["metadata"]["upstream_status"] == 429
    assert "sk-sim-test" not in caught.value.response.text
