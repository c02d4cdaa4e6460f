"""The official openai SDK's Responses API client against a running Switchyard."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pydantic
import pytest
from openai.types.responses import ResponseFunctionToolCall, ResponseStreamEvent

from tests.servers import RunningServer
from tests.simulators.openai_sim import DEFAULT_REPLY, SimulatorHandle

LOCAL = "local/smollm2-135m-instruct"
GPT = "openai/gpt-4o-mini-2024-07-18"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
ANSWER_FORMAT: Any = {
    "type": "json_schema",
    "name": "answer",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    },
}


def client(server: RunningServer, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=api_key or server.api_key, max_retries=0)


def check_sequence(events: list[ResponseStreamEvent]) -> None:
    """The stream's envelope: created, in_progress, ..., one terminal event; numbered."""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[1].type == "response.in_progress"
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert events[-1].type in terminal
    assert not any(e.type in terminal for e in events[:-1])
    ids = {e.response.id for e in events if hasattr(e, "response")}
    assert len(ids) == 1


def generation_record(server: RunningServer, generation_id: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(
            f"{server.base_url}/generation",
            params={"id": generation_id},
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
        if found.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found.status_code == 200, found.text
    return json.loads(found.text, parse_float=Decimal)["data"]


# --- the embedded model ---------------------------------------------------------------------


def test_local_model_responds(server: RunningServer) -> None:
    raw = client(server).responses.with_raw_response.create(
        model=LOCAL,
        instructions="Answer briefly.",
        input="Say hello.",
        max_output_tokens=12,
        temperature=0,
    )
    response = raw.parse()
    # The response id names the generation: gen-X is answered as resp_X.
    assert raw.headers["x-generation-id"] == "gen-" + response.id.removeprefix("resp_")
    assert response.object == "response" and response.model == LOCAL
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    message = response.output[-1]
    assert message.type == "message" and message.role == "assistant"
    usage = response.usage
    assert usage is not None and usage.input_tokens > 5 and 0 < usage.output_tokens <= 12
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # Parameters are echoed back.
    assert response.instructions == "Answer briefly." and response.max_output_tokens == 12
    assert response.temperature == 0 and response.store is False


def test_local_model_streams_with_the_sdk_helper(server: RunningServer) -> None:
    deltas: list[str] = []
    events: list[ResponseStreamEvent] = []
    with client(server).responses.stream(
        model=LOCAL, input="Count to five.", max_output_tokens=10, temperature=0
    ) as stream:
        for event in stream:
            events.append(event)  # type: ignore[arg-type]
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
    check_sequence(events)
    last = events[-1]
    # The SDK helper's get_final_response() only knows response.completed; a response cut
    # by max_output_tokens ends with response.incomplete instead, as OpenAI's does.
    assert last.type in ("response.completed", "response.incomplete")
    final = last.response
    assert "".join(deltas).strip() and "".join(deltas) == final.output_text
    if last.type == "response.incomplete":
        assert final.incomplete_details is not None
        assert final.incomplete_details.reason == "max_output_tokens"
    else:
        assert stream.get_final_response().output_text == final.output_text
    assert final.usage is not None and 0 < final.usage.output_tokens <= 10


def test_local_model_follows_a_json_schema(server: RunningServer) -> None:
    response = client(server).responses.create(
        model=LOCAL,
        input="Name a city and its population.",
        text={"format": ANSWER_FORMAT},
        temperature=0,
        max_output_tokens=60,
    )
    data = json.loads(response.output_text)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)
    assert response.text is not None and response.text.format.type == "json_schema"


def test_local_model_calls_a_function(server: RunningServer) -> None:
    response = client(server).responses.create(
        model=LOCAL,
        input="What is the weather in Paris?",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
        temperature=0,
        max_output_tokens=40,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments) and calls[0].call_id


# --- a simulated OpenAI model ---------------------------------------------------------------


def test_hosted_round_trip(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    raw = client(server).responses.with_raw_response.create(
        model=GPT,
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        ],
        temperature=0.5,
        max_output_tokens=100,
        metadata={"ticket": "42"},
        extra_body={"provider": {"sort": "price"}},
        extra_headers={"X-OpenRouter-Metadata": "enabled"},
    )
    response = raw.parse()
    assert response.model_extra is not None
    assert response.model_extra["openrouter_metadata"]["requested"] == GPT
    assert response.output_text == DEFAULT_REPLY and response.status == "completed"
    assert response.metadata == {"ticket": "42"}
    sent = fresh_sim.requests()[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ]
    assert sent["temperature"] == 0.5
    assert 100 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert "provider" not in sent and "input" not in sent
    # Usage is priced like chat completions (0.15 and 0.60 USD per million tokens) and the
    # generation is accounted under the same id.
    usage = json.loads(raw.http_response.text, parse_float=Decimal)["usage"]
    prompt_price, completion_price = Decimal("0.00000015"), Decimal("0.0000006")
    expected = usage["input_tokens"] * prompt_price + usage["output_tokens"] * completion_price
    assert usage["cost"] == expected and usage["output_tokens"] == 5
    record = generation_record(server, raw.headers["x-generation-id"])
    assert record["total_cost"] == expected and record["model"] == GPT
    assert record["tokens_prompt"] == usage["input_tokens"]
    assert record["tokens_completion"] == usage["output_tokens"]


def test_hosted_stream(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    events = list(
        client(server).responses.create(model=GPT, input="Hello", stream=True)  # type: ignore[arg-type]
    )
    check_sequence(events)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 5 and "".join(deltas) == DEFAULT_REPLY
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == DEFAULT_REPLY
    assert final.response.usage is not None and final.response.usage.output_tokens == 5
    assert fresh_sim.requests()[-1]["body"]["stream"] is True


def test_hosted_output_limit_makes_an_incomplete_response(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    response = client(server).responses.create(model=GPT, input="Hello", max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[-1].status == "incomplete"  # type: ignore[union-attr]


class Answer(pydantic.BaseModel):
    city: str
    population: int


def test_sdk_parse_into_a_pydantic_model(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    parsed = client(server).responses.parse(model=GPT, input="A city", text_format=Answer)
    assert parsed.output_parsed == Answer(city="x", population=1)  # the simulator's example
    sent = fresh_sim.requests()[-1]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Answer"
    assert sent["json_schema"]["strict"] is True
    assert set(sent["json_schema"]["schema"]["properties"]) == {"city", "population"}


def test_function_call_round_trip(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    sdk = client(server)
    question: Any = {"role": "user", "content": "Weather in Oslo?"}
    first = sdk.responses.create(model=GPT, input=[question], tools=[WEATHER_TOOL])
    calls = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "x"}
    sent_tool = fresh_sim.requests()[-1]["body"]["tools"][0]
    assert sent_tool["type"] == "function"
    assert sent_tool["function"]["name"] == "get_weather"
    assert sent_tool["function"]["parameters"] == WEATHER_TOOL["parameters"]

    # The client sends the whole conversation back, as a stateless API requires.
    answer: Any = {"type": "function_call_output", "call_id": calls[0].call_id, "output": "-3C"}
    second = sdk.responses.create(
        model=GPT,
        input=[question, *first.output, answer],
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert second.output_text == DEFAULT_REPLY
    messages = fresh_sim.requests()[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"] == [
        {
            "id": calls[0].call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": calls[0].arguments},
        }
    ]
    assert messages[2] == {"role": "tool", "content": "-3C", "tool_call_id": calls[0].call_id}


def test_streamed_function_call(server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    with client(server).responses.stream(
        model=GPT, input="Weather in Oslo?", tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    fragments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(fragments) >= 2  # the simulator splits the arguments into tokens
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and done[0].arguments == "".join(fragments)
    call = final.output[-1]
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "x"} and call.status == "completed"


def test_mid_stream_failure_ends_with_response_failed(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(chunks=20)
    fresh_sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 4})
    events = list(
        client(server).responses.create(model=GPT, input="Hello", stream=True)  # type: ignore[arg-type]
    )
    check_sequence(events)
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    # What arrived before the break is kept, marked incomplete. (How much arrives is up to
    # the kernel: a TCP reset may discard frames the gateway had not read yet.)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert failed.response.output_text == text
    if text:
        assert failed.response.output[-1].status == "incomplete"  # type: ignore[union-attr]


# --- errors ---------------------------------------------------------------------------------


def bad_request(server: RunningServer, **body: Any) -> openai.BadRequestError:
    body.setdefault("model", GPT)
    body.setdefault("input", "Hello")
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).responses.create(**body)
    return caught.value


def test_previous_response_id_is_refused(server: RunningServer) -> None:
    error = bad_request(server, previous_response_id="resp_123")
    assert error.status_code == 400
    assert isinstance(error.body, dict)
    assert error.body["metadata"]["field"] == "previous_response_id"
    assert "stateless" in error.message


def test_hosted_tool_types_are_refused(server: RunningServer) -> None:
    error = bad_request(server, tools=[{"type": "web_search_preview"}])
    assert isinstance(error.body, dict) and error.body["metadata"]["field"] == "tools[0].type"
    assert "web_search_preview" in error.message


def test_errors_name_the_responses_field(server: RunningServer) -> None:
    error = bad_request(
        server,
        input=[
            {"role": "user", "content": "Hi"},
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": "ftp://x/y.png", "detail": "auto"}
                ],
            },
        ],
    )
    assert isinstance(error.body, dict)
    assert error.body["metadata"]["field"] == "input[1].content[0].image_url"
    error = bad_request(server, model=LOCAL, max_output_tokens=100_000)
    assert isinstance(error.body, dict) and error.body["metadata"]["field"] == "max_output_tokens"
    error = bad_request(server, input=[{"type": "web_search_call", "id": "ws_1"}])
    assert isinstance(error.body, dict) and error.body["metadata"]["field"] == "input[0].type"


def test_bad_key_is_refused(server: RunningServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(server, api_key="sk-not-a-key").responses.create(model=GPT, input="Hello")
    assert caught.value.status_code == 401
