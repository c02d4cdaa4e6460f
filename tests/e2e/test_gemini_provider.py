"""Google AI Studio end to end: the openai SDK calls google/... models through a real server
whose only provider is the Gemini adapter, pointed at the Gemini simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.servers import RunningServer, start_server
from tests.simulators.gemini_sim import (
    DEFAULT_REPLY,
    DEFAULT_THOUGHT,
    GeminiSimulatorHandle,
    run_in_thread,
)

FLASH = "google/gemini-2.5-flash"
# USD per token, as in catalog/data/google.yaml.
PROMPT, COMPLETION, CACHE_READ = Decimal("0.0000003"), Decimal("0.0000025"), Decimal("0.00000003")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "$defs": {"unit": {"type": "string", "enum": ["C", "F"]}},
            "properties": {
                "city": {"type": "string"},
                "unit": {"$ref": "#/$defs/unit"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def gemini_sim() -> Iterator[GeminiSimulatorHandle]:
    with run_in_thread() as handle:
        yield handle


@pytest.fixture
def fresh_gemini(gemini_sim: GeminiSimulatorHandle) -> GeminiSimulatorHandle:
    gemini_sim.reset()
    return gemini_sim


@pytest.fixture(scope="module")
def gemini_server(
    gemini_sim: GeminiSimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        "breaker_failures = 100000\n\n[local]\nenabled = false\n\n"
        "[providers.google-ai-studio]\n"
        f'api_key = "{gemini_sim.api_key}"\nbase_url = "{gemini_sim.base_url}"\n'
    )
    # The SDK's own variables must not decide which key is used.
    running = start_server(
        tmp_path_factory.mktemp("gemini"), config, env={"GOOGLE_API_KEY": "", "GEMINI_API_KEY": ""}
    )
    yield running
    running.stop()


@pytest.fixture
def client(gemini_server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gemini_server.base_url, api_key=gemini_server.api_key, max_retries=0
    )


def cost(usage: Any) -> Decimal:
    assert usage is not None and usage.model_extra is not None
    return Decimal(str(usage.model_extra["cost"]))


def expected_cost(prompt: int, completion: int, cached: int = 0) -> Decimal:
    return (prompt - cached) * PROMPT + cached * CACHE_READ + completion * COMPLETION


def test_completion_is_priced_from_the_catalog(
    client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle
) -> None:
    result = client.chat.completions.create(
        model=FLASH,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ],
        max_tokens=20,
        temperature=0.2,
    )
    assert result.choices[0].message.content == DEFAULT_REPLY
    assert result.choices[0].finish_reason == "stop"
    assert result.model == FLASH
    assert result.model_extra is not None and result.model_extra["provider"] == "Google AI Studio"
    (sent,) = fresh_gemini.requests()
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["auth_ok"] is True
    assert sent["body"] == {
        "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"candidateCount": 1, "maxOutputTokens": 20, "temperature": 0.2},
    }
    usage = result.usage
    assert usage is not None
    # The simulator counts (9 + 11) // 4 + 3 prompt tokens and one per reply word.
    assert (usage.prompt_tokens, usage.completion_tokens) == (8, 4)
    assert cost(usage) == expected_cost(8, 4)


def test_stream_with_reasoning_and_cache(
    client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle
) -> None:
    fresh_gemini.configure(cached_tokens=5)
    chunks = list(
        client.chat.completions.create(
            model=FLASH,
            messages=[{"role": "user", "content": "Tell me something long enough"}],
            stream=True,
            extra_body={"reasoning": {"max_tokens": 512}},
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices
    )
    assert content == DEFAULT_REPLY and reasoning == DEFAULT_THOUGHT
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    body = fresh_gemini.requests()[-1]["body"]
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 512,
        "includeThoughts": True,
    }
    (usage_chunk,) = [c for c in chunks if c.usage is not None]
    usage = usage_chunk.usage
    assert usage is not None and usage.completion_tokens_details is not None
    thoughts = len(DEFAULT_THOUGHT.split())  # one simulator token per word (and the dot)
    assert usage.completion_tokens_details.reasoning_tokens == thoughts + 1
    assert usage.completion_tokens == 4 + thoughts + 1
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 5
    assert cost(usage) == expected_cost(usage.prompt_tokens, usage.completion_tokens, cached=5)


def test_tool_call_round_trip(client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model=FLASH, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.id == "call_0" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "x"}  # type: ignore[union-attr]
    declaration = fresh_gemini.requests()[-1]["body"]["tools"][0]["functionDeclarations"][0]
    assert declaration["parametersJsonSchema"] == WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
    ]
    # The simulator refuses function responses that do not answer the previous calls.
    second = client.chat.completions.create(model=FLASH, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == DEFAULT_REPLY
    answered = fresh_gemini.requests()[-1]["body"]["contents"][-1]
    assert answered == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "call_0",
                    "name": "get_weather",
                    "response": {"output": "Sunny, 21C"},
                }
            }
        ],
    }


def test_streamed_tool_calls(client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle) -> None:
    ping = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
    chunks = list(
        client.chat.completions.create(
            model=FLASH,
            messages=[{"role": "user", "content": "Call both"}],
            tools=[WEATHER_TOOL, ping],  # type: ignore[list-item]
            tool_choice="required",
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.index, tc.id, tc.function.name) for tc in calls] == [  # type: ignore[union-attr]
        (0, "call_0", "get_weather"),
        (1, "call_1", "ping"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "x"}  # type: ignore[union-attr, arg-type]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    body = fresh_gemini.requests()[-1]["body"]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert fresh_gemini.requests()[-1]["query"] == {"alt": "sse"}


def test_blocked_prompt_is_a_content_filter(
    client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle
) -> None:
    fresh_gemini.configure(block_reason="PROHIBITED_CONTENT")
    result = client.chat.completions.create(
        model=FLASH, messages=[{"role": "user", "content": "something bad"}]
    )
    assert result.choices[0].finish_reason == "content_filter"
    assert result.choices[0].message.content is None
    assert result.choices[0].model_extra is not None
    assert result.choices[0].model_extra["native_finish_reason"] == "PROHIBITED_CONTENT"


def test_rate_limit_keeps_googles_error(
    client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle
) -> None:
    fresh_gemini.add_faults({"kind": "status", "status": 429, "retry_after": 3})
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "x"}])
    error = caught.value.body
    assert isinstance(error, dict)
    raw = error["metadata"]["raw"]
    assert raw["status"] == "RESOURCE_EXHAUSTED" and raw["code"] == 429
    assert caught.value.response.headers["retry-after"] == "3"


def test_unparsable_tool_arguments_are_a_400(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "1"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=FLASH, messages=messages)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["metadata"]["field"] == "messages[1].tool_calls[0].function.arguments"


def test_unavailable_stream_reports_before_first_byte(
    client: openai.OpenAI, fresh_gemini: GeminiSimulatorHandle
) -> None:
    fresh_gemini.add_faults({"kind": "status", "status": 503})
    with pytest.raises(openai.APIStatusError) as caught:
        list(
            client.chat.completions.create(
                model=FLASH, messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert caught.value.status_code == 503


def test_the_key_never_reaches_the_log(
    client: openai.OpenAI, gemini_server: RunningServer, gemini_sim: GeminiSimulatorHandle
) -> None:
    gemini_sim.add_faults({"kind": "status", "status": 400})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "x"}])
    assert gemini_sim.api_key not in gemini_server.log()


def test_mid_stream_disconnect_becomes_an_error_chunk(
    gemini_server: RunningServer, fresh_gemini: GeminiSimulatorHandle
) -> None:
    fresh_gemini.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    with httpx.stream(
        "POST",
        f"{gemini_server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {gemini_server.api_key}"},
        json={"model": FLASH, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        events = [
            json.loads(line[len("data: ") :])
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    last = events[-1]
    assert last["error"]["code"] == 502 and last["choices"][0]["finish_reason"] == "error"
    assert len(fresh_gemini.requests()) == 1
