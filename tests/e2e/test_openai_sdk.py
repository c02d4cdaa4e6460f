"""The official openai SDK, pointed at a running Switchyard, against every provider kind."""

from __future__ import annotations

import json
from dataclasses import dataclass

import openai
import pytest

from tests.servers import RunningServer
from tests.simulators.openai_sim import DEFAULT_REPLY, SimulatorHandle

LOCAL = "local/smollm2-135m-instruct"
GPT = "openai/gpt-4o-mini-2024-07-18"
IMAGE = (  # a 1x1 PNG
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANSWER_SCHEMA = {
    "name": "answer",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    },
}


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


# --- the embedded model ---------------------------------------------------------------------


def test_local_model_answers(server: RunningServer) -> None:
    completion = client(server).chat.completions.with_raw_response.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0,
    )
    result = completion.parse()
    assert completion.headers["x-generation-id"] == result.id
    assert result.id.startswith("gen-")
    assert result.model == LOCAL
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content
    assert result.choices[0].finish_reason in ("stop", "length")
    usage = result.usage
    assert usage is not None and usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert result.model_extra is not None and result.model_extra["provider"] == "Switchyard Local"


def test_local_model_streams(server: RunningServer) -> None:
    stream = client(server).chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=10,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert len({c.id for c in chunks}) == 1
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes in (["length"], ["stop"])
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].usage is not None and usage_chunks[0].usage.completion_tokens <= 10


def test_local_model_calls_a_tool(server: RunningServer) -> None:
    result = client(server).chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=40,
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]


def test_local_model_streams_a_tool_call(server: RunningServer) -> None:
    stream = client(server).chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=40,
        stream=True,
    )
    name, arguments, ids, finishes = "", "", set(), []
    for chunk in stream:
        for choice in chunk.choices:
            finishes.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                ids.add(delta.id)
                if delta.function and delta.function.name:
                    name += delta.function.name
                if delta.function and delta.function.arguments:
                    arguments += delta.function.arguments
    # Concatenated as a client does: the name and id are sent once, not on every chunk.
    assert name == "get_weather" and len(ids - {None}) == 1
    assert "city" in json.loads(arguments)
    assert [f for f in finishes if f] == ["tool_calls"]


def test_local_model_follows_a_json_schema(server: RunningServer) -> None:
    result = client(server).chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Name a city and its population."}],
        response_format={"type": "json_schema", "json_schema": ANSWER_SCHEMA},  # type: ignore[typeddict-item]
        temperature=0,
        max_tokens=60,
    )
    data = json.loads(result.choices[0].message.content or "")
    assert isinstance(data["city"], str) and isinstance(data["population"], int)


def test_local_model_returns_logprobs(server: RunningServer) -> None:
    result = client(server).chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=5,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    logprobs = result.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    text = result.choices[0].message.content or ""
    assert "".join(t.token for t in logprobs.content) == text
    for token in logprobs.content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 3
        # Greedy decoding picks the most likely token.
        assert token.logprob == pytest.approx(token.top_logprobs[0].logprob)


# --- simulated OpenAI and Azure -------------------------------------------------------------


@dataclass
class Hosted:
    server: RunningServer
    provider: str
    path: str  # where the simulator saw the request for GPT


@pytest.fixture(params=["openai", "azure"])
def hosted(request: pytest.FixtureRequest, fresh_sim: SimulatorHandle) -> Hosted:
    if request.param == "openai":
        return Hosted(request.getfixturevalue("openai_server"), "OpenAI", "/v1/chat/completions")
    return Hosted(
        request.getfixturevalue("azure_server"),
        "Azure",
        "/openai/deployments/gpt-4o-mini-2024-07-18/chat/completions",
    )


def test_hosted_round_trip(hosted: Hosted, fresh_sim: SimulatorHandle) -> None:
    result = client(hosted.server).chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": "Hello"}],
        temperature=0.5,
        extra_body={"top_k": 3, "provider": {"sort": "price"}, "session_id": "s1"},
    )
    assert result.choices[0].message.content == DEFAULT_REPLY
    assert result.model == GPT
    assert result.model_extra is not None and result.model_extra["provider"] == hosted.provider
    sent = fresh_sim.requests()[-1]
    assert sent["path"] == hosted.path and sent["auth_ok"] is True
    body = sent["body"]
    # Azure names the model by the deployment in the path, OpenAI by the body.
    assert body.get("model") == (None if hosted.provider == "Azure" else "gpt-4o-mini-2024-07-18")
    assert body["temperature"] == 0.5
    # Switchyard-only fields and parameters the endpoint does not support stay home.
    assert "provider" not in body and "session_id" not in body and "top_k" not in body
    # Usage is priced from the catalog: 0.15 and 0.60 USD per million tokens.
    usage = result.usage
    assert usage is not None
    expected = (usage.prompt_tokens * 15 + usage.completion_tokens * 60) / 100_000_000
    assert usage.model_extra is not None
    assert usage.model_extra["cost"] == pytest.approx(expected, rel=1e-12)


def test_hosted_streams_with_usage(hosted: Hosted, fresh_sim: SimulatorHandle) -> None:
    chunks = list(
        client(hosted.server).chat.completions.create(
            model=GPT,
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_REPLY
    assert fresh_sim.requests()[-1]["body"]["stream_options"] == {"include_usage": True}
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 5  # type: ignore[union-attr]
    assert chunks[-1].choices == []


def test_hosted_tools_streamed(hosted: Hosted, fresh_sim: SimulatorHandle) -> None:
    chunks = list(
        client(hosted.server).chat.completions.create(
            model=GPT,
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[WEATHER_TOOL],
            stream=True,  # type: ignore[list-item]
        )
    )
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                if delta.function and delta.function.name:
                    call["name"] += delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
    assert list(calls) == [0] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "x"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"


def test_hosted_json_schema(hosted: Hosted, fresh_sim: SimulatorHandle) -> None:
    result = client(hosted.server).chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": "A city"}],
        response_format={"type": "json_schema", "json_schema": ANSWER_SCHEMA},  # type: ignore[typeddict-item]
    )
    data = json.loads(result.choices[0].message.content or "")
    assert set(data) == {"city", "population"}
    assert fresh_sim.requests()[-1]["body"]["response_format"]["json_schema"]["strict"] is True


def test_hosted_image_part(hosted: Hosted, fresh_sim: SimulatorHandle) -> None:
    result = client(hosted.server).chat.completions.create(
        model=GPT,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
                ],
            }
        ],
    )
    assert result.choices[0].message.content == DEFAULT_REPLY
    sent = fresh_sim.requests()[-1]["body"]["messages"][0]["content"][1]
    assert sent == {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}
    # One image at 0.007225 USD on top of the tokens.
    usage = result.usage
    assert usage is not None and usage.model_extra is not None
    tokens = (usage.prompt_tokens * 15 + usage.completion_tokens * 60) / 100_000_000
    assert usage.model_extra["cost"] == pytest.approx(tokens + 0.007225, rel=1e-12)


def test_azure_provider(azure_server: RunningServer, fresh_sim: SimulatorHandle) -> None:
    result = client(azure_server).chat.completions.create(
        model="openai/gpt-4o",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=3,
    )
    assert result.choices[0].finish_reason == "length"
    assert result.model_extra is not None and result.model_extra["provider"] == "Azure"
    sent = fresh_sim.requests()[-1]
    assert sent["path"] == "/openai/deployments/gpt-4o/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["auth_ok"] is True and "model" not in sent["body"]
    stream = list(
        client(azure_server).chat.completions.create(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY
