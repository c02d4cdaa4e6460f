"""Protocol-conformance tests of the OpenAI simulator, driven by the official SDK.

Every raw response and stream chunk is validated against the SDK's pydantic
types and must not carry fields those types do not declare, so the simulator
cannot drift from what the SDK (and so the real API) speaks.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from .openai_sim import (
    DEFAULT_REPLY,
    MAX_RECORDED_REQUESTS,
    OpenAISimulator,
    SimulatorHandle,
    example_from_schema,
    run_in_thread,
    tokenize,
)

MESSAGES: list[Any] = [{"role": "user", "content": "What is up?"}]
# len("What is up?") // 4 + 3 per message
PROMPT_TOKENS = 11 // 4 + 3
REPLY_TOKENS = ["Hello", " from", " the", " simulator", "."]

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "optional": {"type": "string"},
            },
            "required": ["city", "days", "unit"],
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "object", "properties": {"dst": {"type": "boolean"}}}},
            "required": ["zone"],
        },
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread() as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh_state(sim: SimulatorHandle) -> None:
    sim.reset()


@pytest.fixture
def client(sim: SimulatorHandle) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=sim.openai_base_url, api_key=sim.api_key, max_retries=0, timeout=5
    ) as c:
        yield c


@pytest.fixture
def azure(sim: SimulatorHandle) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=sim.base_url,
        api_key=sim.api_key,
        api_version="2024-10-21",
        max_retries=0,
        timeout=5,
    ) as c:
        yield c


# -- helpers ---------------------------------------------------------------------


def assert_declared_only(value: object, path: str = "$") -> None:
    """Fail if any (nested) model carries fields its SDK type does not declare."""
    if isinstance(value, pydantic.BaseModel):
        assert not value.model_extra, f"{path}: undeclared fields {sorted(value.model_extra)}"
        for name in type(value).model_fields:
            assert_declared_only(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_declared_only(item, f"{path}[{index}]")


def strict_completion(raw: dict[str, Any]) -> ChatCompletion:
    completion = ChatCompletion.model_validate(raw, strict=True)
    assert_declared_only(completion)
    # Nothing was coerced or dropped on the way in.
    assert completion.model_dump(mode="json", exclude_unset=True) == raw
    return completion


def strict_chunk(raw: dict[str, Any]) -> ChatCompletionChunk:
    chunk = ChatCompletionChunk.model_validate(raw, strict=True)
    assert_declared_only(chunk)
    assert chunk.model_dump(mode="json", exclude_unset=True) == raw
    return chunk


def parse_sse(body: bytes) -> list[dict[str, Any]]:
    """Split an SSE body into its JSON chunks, checking the exact framing."""
    assert body.endswith(b"data: [DONE]\n\n")
    events = body.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = []
    for event in events[:-2]:
        assert event.startswith("data: {") and "\n" not in event, event
        chunks.append(json.loads(event.removeprefix("data: ")))
    return chunks


def raw_stream(client: openai.OpenAI, **kwargs: Any) -> list[dict[str, Any]]:
    with client.chat.completions.with_streaming_response.create(stream=True, **kwargs) as resp:
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        return parse_sse(resp.read())


def raw_completion(client: openai.OpenAI, **kwargs: Any) -> dict[str, Any]:
    resp = client.chat.completions.with_raw_response.create(**kwargs)
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-request-id"].startswith("req_")
    raw: dict[str, Any] = json.loads(resp.text)
    return raw


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# -- plain completions -----------------------------------------------------------


def test_non_stream_completion(client: openai.OpenAI) -> None:
    raw = raw_completion(client, model="gpt-4o", messages=MESSAGES)
    completion = strict_completion(raw)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert abs(completion.created - time.time()) < 5
    assert completion.system_fingerprint and completion.service_tier == "default"
    (choice,) = completion.choices
    assert choice.message.content == DEFAULT_REPLY
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop" and choice.logprobs is None
    assert raw["usage"] == usage(PROMPT_TOKENS, len(REPLY_TOKENS))
    # The SDK's own parsing agrees.
    parsed = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert parsed.choices[0].message.content == DEFAULT_REPLY


def test_prompt_tokens_count_all_message_text(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "system", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 20}]},
    ]
    completion = client.chat.completions.create(model="m", messages=messages)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 60 // 4 + 2 * 3


def test_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = raw_stream(
        client, model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True}
    )
    parsed = [strict_chunk(c) for c in chunks]
    assert len({c.id for c in parsed}) == 1 and parsed[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o" for c in parsed)
    assert len({c.created for c in parsed}) == 1

    first, *content, final, usage_chunk = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["choices"][0]["delta"] for c in content] == [{"content": t} for t in REPLY_TOKENS]
    assert all(c["choices"][0]["finish_reason"] is None for c in [first, *content])
    assert final["choices"][0]["delta"] == {}
    assert final["choices"][0]["finish_reason"] == "stop"
    # Exactly like OpenAI: "usage": null on every chunk, then a choice-less usage chunk.
    assert all(c["usage"] is None for c in [first, *content, final])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == usage(PROMPT_TOKENS, len(REPLY_TOKENS))

    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    sdk_chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in sdk_chunks if c.choices) == (
        DEFAULT_REPLY
    )
    assert sdk_chunks[-1].usage is not None and sdk_chunks[-1].usage.completion_tokens == 5


def test_stream_without_usage_has_no_usage_field(client: openai.OpenAI) -> None:
    chunks = raw_stream(client, model="m", messages=MESSAGES)
    for chunk in chunks:
        strict_chunk(chunk)
        assert "usage" not in chunk
        assert len(chunk["choices"]) == 1
    assert content_of(chunks) == DEFAULT_REPLY
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_obfuscation_can_be_disabled(client: openai.OpenAI) -> None:
    assert all("obfuscation" in c for c in raw_stream(client, model="m", messages=MESSAGES))
    chunks = raw_stream(
        client, model="m", messages=MESSAGES, stream_options={"include_obfuscation": False}
    )
    assert not any("obfuscation" in c for c in chunks)


def test_chunks_and_reply_config(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.configure(chunks=20)
    chunks = raw_stream(client, model="m", messages=MESSAGES)
    content_chunks = [c for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == 20
    assert content_of(chunks) == " ".join([DEFAULT_REPLY] * 4)
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.usage is not None and completion.usage.completion_tokens == 20

    sim.configure(chunks=2, reply="custom text here")
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "custom text"


# -- tools and structured output -------------------------------------------------


def test_parallel_tool_calls(client: openai.OpenAI) -> None:
    raw = raw_completion(client, model="m", messages=MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL])
    completion = strict_completion(raw)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls if c.type == "function"] == ["get_weather", "get_time"]
    assert all(c.id.startswith("call_") for c in calls) and calls[0].id != calls[1].id
    args = [json.loads(c.function.arguments) for c in calls if c.type == "function"]
    assert args == [{"city": "x", "days": 1, "unit": "celsius"}, {"zone": {}}]


def test_tool_choice_variants(client: openai.OpenAI) -> None:
    def names(**kwargs: Any) -> list[str]:
        completion = client.chat.completions.create(
            model="m", messages=MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL], **kwargs
        )
        calls = completion.choices[0].message.tool_calls or []
        return [c.function.name for c in calls if c.type == "function"]

    named = {"type": "function", "function": {"name": "get_time"}}
    assert names(tool_choice=named) == ["get_time"]
    assert names(parallel_tool_calls=False) == ["get_weather"]
    assert names(tool_choice="required") == ["get_weather", "get_time"]
    assert names(tool_choice="none") == []
    with pytest.raises(openai.BadRequestError):
        names(tool_choice={"type": "function", "function": {"name": "nope"}})


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    chunks = raw_stream(
        client,
        model="m",
        messages=MESSAGES,
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream_options={"include_usage": True},
    )
    for chunk in chunks:
        strict_chunk(chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    # As OpenAI streams them: announce id/name with empty arguments, then fragments.
    first = deltas[0]
    assert first["role"] == "assistant" and first["content"] is None
    (announce,) = first["tool_calls"]
    assert announce["index"] == 0 and announce["type"] == "function"
    assert announce["id"].startswith("call_")
    assert announce["function"] == {"name": "get_weather", "arguments": ""}

    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for delta in deltas[:-1]:
        (call,) = delta["tool_calls"]
        if "id" in call:
            names[call["index"]] = call["function"]["name"]
            assert call["function"]["arguments"] == ""
        else:
            assert set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}
            arguments[call["index"]] = (
                arguments.get(call["index"], "") + call["function"]["arguments"]
            )
    assert names == {0: "get_weather", 1: "get_time"}
    assert json.loads(arguments[0]) == {"city": "x", "days": 1, "unit": "celsius"}
    assert json.loads(arguments[1]) == {"zone": {}}
    assert deltas[-1] == {}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == len(tokenize(arguments[0])) + len(
        tokenize(arguments[1])
    )


def test_json_schema_response_format(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "null"}]},
            "nested": {
                "type": ["object", "null"],
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
            },
        },
        "required": ["name", "score", "tags", "kind", "nested"],
        "additionalProperties": False,
        "$defs": {"Kind": {"type": "string", "enum": ["a", "b"]}},
    }
    raw = raw_completion(
        client,
        model="m",
        messages=MESSAGES,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "thing", "schema": schema, "strict": True},
        },
    )
    completion = strict_completion(raw)
    content = completion.choices[0].message.content or ""
    assert json.loads(content) == {
        "name": "x",
        "score": 1,
        "tags": [],
        "kind": "a",
        "nested": {"ok": True},
    }
    json_object = client.chat.completions.create(
        model="m", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json_object.choices[0].message.content == '{"result": "ok"}'


def test_sdk_structured_output_parse(client: openai.OpenAI) -> None:
    class Step(pydantic.BaseModel):
        explanation: str
        value: int

    class Answer(pydantic.BaseModel):
        steps: list[Step]
        final: Step
        done: bool

    completion = client.chat.completions.parse(model="m", messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed == Answer(
        steps=[], final=Step(explanation="x", value=1), done=True
    )


def test_example_from_schema() -> None:
    assert example_from_schema({"type": "array", "items": {"type": "integer"}, "minItems": 2}) == [
        1,
        1,
    ]
    assert example_from_schema({"const": 7}) == 7
    assert example_from_schema({"type": "string", "minLength": 3}) == "xxx"
    assert example_from_schema({"type": "null"}) is None
    recursive = {"$ref": "#/$defs/Node", "$defs": {"Node": {"$ref": "#/$defs/Node"}}}
    assert example_from_schema(recursive) is None


def test_tokenize_is_lossless() -> None:
    text = '  Hello, world!  {"a": [1, 2]}\n end \t'
    assert "".join(tokenize(text)) == text
    assert tokenize(DEFAULT_REPLY) == REPLY_TOKENS


# -- logprobs, limits and stops --------------------------------------------------


def test_logprobs(client: openai.OpenAI) -> None:
    raw = raw_completion(client, model="m", messages=MESSAGES, logprobs=True, top_logprobs=3)
    completion = strict_completion(raw)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [e.token for e in logprobs.content] == REPLY_TOKENS
    for entry in logprobs.content:
        assert entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token
        assert entry.logprob <= 0

    chunks = raw_stream(client, model="m", messages=MESSAGES, logprobs=True, top_logprobs=2)
    streamed = [strict_chunk(c).choices[0].logprobs for c in chunks]
    tokens = [e.token for lp in streamed if lp and lp.content for e in lp.content]
    assert tokens == REPLY_TOKENS
    assert all(len(e.top_logprobs) == 2 for lp in streamed if lp and lp.content for e in lp.content)


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_truncates(client: openai.OpenAI, param: str) -> None:
    raw = raw_completion(client, model="m", messages=MESSAGES, **{param: 2})
    completion = strict_completion(raw)
    assert completion.choices[0].message.content == "Hello from"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 2

    chunks = raw_stream(client, model="m", messages=MESSAGES, **{param: 3})
    assert content_of(chunks) == "Hello from the"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_max_tokens_not_reached(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == DEFAULT_REPLY


def test_stop_sequences(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=MESSAGES, stop=[" the", "zzz"])
    assert completion.choices[0].message.content == "Hello from"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    # A stop string inside a token cuts that token.
    chunks = raw_stream(client, model="m", messages=MESSAGES, stop="mul")
    assert content_of(chunks) == "Hello from the si"


# -- Azure -----------------------------------------------------------------------


def test_azure_completion_and_stream(sim: SimulatorHandle, azure: openai.AzureOpenAI) -> None:
    resp = azure.chat.completions.with_raw_response.create(model="my-deployment", messages=MESSAGES)
    completion = strict_completion(json.loads(resp.text))
    assert completion.model == "my-deployment"
    assert completion.choices[0].message.content == DEFAULT_REPLY

    stream = azure.chat.completions.create(
        model="my-deployment",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    for chunk in chunks:
        assert_declared_only(chunk)
        assert chunk.obfuscation is None  # OpenAI-only
    assert {c.model for c in chunks} == {"my-deployment"}
    assert chunks[-1].usage is not None

    record = sim.requests()[0]
    assert record["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert record["query"] == {"api-version": "2024-10-21"}
    assert record["auth_ok"] is True
    assert not {"api-key", "authorization"} & set(record["headers"])


def test_azure_errors(sim: SimulatorHandle) -> None:
    url = f"{sim.base_url}/openai/deployments/d/chat/completions"
    body = {"messages": MESSAGES}
    status, error = http("POST", url, body, {"api-key": sim.api_key})
    assert status == 400
    assert error["error"]["code"] == "MissingApiVersionParameter" and error["error"]["message"]
    status, error = http("POST", url + "?api-version=latest", body, {"api-key": sim.api_key})
    assert status == 400
    status, error = http("POST", url + "?api-version=2025-01-01-preview", body, {"api-key": "no"})
    assert status == 401 and set(error["error"]) == {"code", "message"}
    status, ok = http(
        "POST", url + "?api-version=2025-01-01-preview", body, {"api-key": sim.api_key}
    )
    assert status == 200 and ok["model"] == "d"


def test_azure_content_filter_mode(sim: SimulatorHandle, azure: openai.AzureOpenAI) -> None:
    sim.configure(azure_content_filter=True)
    completion = azure.chat.completions.create(model="dep", messages=MESSAGES)
    assert completion.model_extra and "prompt_filter_results" in completion.model_extra
    assert completion.choices[0].model_extra and "content_filter_results" in (
        completion.choices[0].model_extra
    )
    with azure.chat.completions.with_streaming_response.create(
        model="dep", messages=MESSAGES, stream=True
    ) as resp:
        chunks = parse_sse(resp.read())
    assert chunks[0]["choices"] == [] and chunks[0]["model"] == ""
    assert "prompt_filter_results" in chunks[0]
    assert content_of(chunks[1:]) == DEFAULT_REPLY
    stream = azure.chat.completions.create(model="dep", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY


# -- auth and validation -----------------------------------------------------------


def test_wrong_or_missing_key(sim: SimulatorHandle) -> None:
    with (
        openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        bad.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 401
    body = info.value.body
    assert isinstance(body, dict) and isinstance(body.pop("message"), str)
    assert body == {"type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
    status, error = http("POST", f"{sim.openai_base_url}/chat/completions", {"model": "m"})
    assert status == 401 and error["error"]["code"] == "invalid_api_key"
    assert sim.requests()[-1]["auth_ok"] is False


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{not json", None, None),
        ({"messages": MESSAGES}, None, None),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({"model": "m", "messages": []}, "messages", "empty_array"),
        (
            {"model": "m", "messages": MESSAGES, "stream_options": {}},
            "stream_options",
            "invalid_value",
        ),
        ({"model": "m", "messages": MESSAGES, "max_tokens": 0}, "max_tokens", "invalid_value"),
        (
            {"model": "m", "messages": MESSAGES, "logprobs": True, "top_logprobs": 99},
            "top_logprobs",
            "invalid_value",
        ),
    ],
)
def test_bad_requests(sim: SimulatorHandle, body: Any, param: str | None, code: str | None) -> None:
    headers = {"Authorization": f"Bearer {sim.api_key}", "Content-Type": "application/json"}
    status, error = http("POST", f"{sim.openai_base_url}/chat/completions", body, headers)
    assert status == 400
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["type"] == "invalid_request_error"
    assert (error["error"]["param"], error["error"]["code"]) == (param, code)


def test_models_and_unknown_routes(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="m", input="hi")


# -- faults ------------------------------------------------------------------------


def test_rate_limit_with_retry_after(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "status", "status": 429, "retry_after": 2})
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.body["type"] == "requests"  # type: ignore[index]
    # The fault was used up.
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_sdk_retries_honour_retry_after(sim: SimulatorHandle) -> None:
    sim.add_faults({"kind": "status", "status": 429, "retry_after": 0.05})
    with openai.OpenAI(base_url=sim.openai_base_url, api_key=sim.api_key, max_retries=1) as c:
        assert c.chat.completions.create(model="m", messages=MESSAGES).choices
    assert len(sim.requests()) == 2
    assert sim.stats()["faults_applied"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(sim: SimulatorHandle, client: openai.OpenAI, status: int) -> None:
    sim.add_faults({"kind": "status", "status": status})
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == status
    assert "retry-after" not in info.value.response.headers
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}


def test_azure_rate_limit(sim: SimulatorHandle, azure: openai.AzureOpenAI) -> None:
    sim.add_faults({"kind": "status", "status": 429, "retry_after": 3})
    with pytest.raises(openai.RateLimitError) as info:
        azure.chat.completions.create(model="dep", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.code == "429"
    assert "retry after 3 seconds" in info.value.message


def test_latency(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "latency", "ms": 200})
    start = time.monotonic()
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    assert time.monotonic() - start >= 0.2


def test_timeout(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "timeout"})
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=MESSAGES, timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 2
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_reset(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "reset"}, {"kind": "reset"})
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert not isinstance(info.value, openai.APITimeoutError)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_disconnect_mid_stream(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    received: list[str | None] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hello"]
    assert sim.stats()["streams_completed"] == 0

    sim.add_faults({"kind": "disconnect_mid_stream"})
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_slow_tokens(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "slow_tokens", "ms": 30}, {"kind": "slow_tokens", "ms": 30})
    start = time.monotonic()
    gaps = []
    for _ in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
        gaps.append(time.monotonic() - start)
    # role chunk at once, then 5 content chunks and the final chunk, 30 ms apart
    assert gaps[0] < 0.1 and gaps[-1] >= 6 * 0.03
    start = time.monotonic()
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    assert time.monotonic() - start >= 5 * 0.03


def test_cancelled_stream_is_counted_promptly(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "slow_tokens", "ms": 200})
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    chunks = iter(stream)
    next(chunks)
    next(chunks)
    assert sim.stats()["active_streams"] == 1
    stream.close()
    closed = time.monotonic()
    while sim.stats()["cancelled_streams"] == 0:
        assert time.monotonic() - closed < 0.2, (
            "abandoned stream not noticed within a chunk interval"
        )
        time.sleep(0.005)
    stats = sim.stats()
    assert stats["active_streams"] == 0
    assert stats["streams_started"] == 1 and stats["streams_completed"] == 0


def test_sticky_faults_and_clearing(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    status, queued = http(
        "POST",
        f"{sim.base_url}/__sim/faults",
        {
            "faults": [{"kind": "status", "status": 500}, {"kind": "status", "status": 503}],
            "sticky": True,
        },
    )
    assert status == 200 and queued["queued"] == 1 and queued["sticky"]["status"] == 503
    seen = []
    for _ in range(4):
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="m", messages=MESSAGES)
        seen.append(info.value.status_code)
    assert seen == [500, 503, 503, 503]
    assert http("DELETE", f"{sim.base_url}/__sim/faults")[0] == 200
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices


def test_fault_header_overrides_queue(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    sim.add_faults({"kind": "status", "status": 503})
    fault = json.dumps({"kind": "status", "status": 429, "retry_after": 1})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-sim-fault": fault}
        )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-sim-fault": '{"kind": "nope"}'}
        )
    # The queued fault is still there.
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_rejected_request_does_not_consume_fault(
    sim: SimulatorHandle, client: openai.OpenAI
) -> None:
    sim.add_faults({"kind": "status", "status": 500})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES)


# -- control API -------------------------------------------------------------------


def test_control_api_over_http(sim: SimulatorHandle, client: openai.OpenAI) -> None:
    base = f"{sim.base_url}/__sim"
    assert http("POST", f"{base}/faults", {"faults": [{"kind": "boom"}]})[0] == 400
    assert http("POST", f"{base}/faults", {"faults": [{"kind": "latency", "typo": 1}]})[0] == 400
    assert http("POST", f"{base}/config", {"chunks": 0})[0] == 400
    assert http("POST", f"{base}/config", {"unknown": 1})[0] == 400
    status, config = http("POST", f"{base}/config", {"chunks": 7, "reply": "a b c"})
    assert status == 200 and config["chunks"] == 7 and config["reply"] == "a b c"
    assert http("GET", f"{base}/config")[1] == config

    client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"X-Trace": "t1"})
    status, recorded = http("GET", f"{base}/requests")
    (record,) = recorded["requests"]
    assert record["method"] == "POST" and record["path"] == "/v1/chat/completions"
    assert record["body"] == {"model": "m", "messages": MESSAGES}
    assert record["headers"]["x-trace"] == "t1" and record["auth_ok"] is True
    assert "authorization" not in record["headers"]
    assert http("DELETE", f"{base}/requests")[1] == {"requests": []}

    status, stats = http("GET", f"{base}/stats")
    assert stats["requests"] == 1 and stats["chat_requests"] == 1
    assert {"cancelled_streams", "active_streams", "faults_applied"} <= set(stats)
    assert http("POST", f"{base}/reset")[0] == 200
    assert http("GET", f"{base}/config")[1]["chunks"] is None
    assert http("GET", f"{base}/stats")[1]["requests"] == 0


def test_recorded_requests_are_bounded() -> None:
    simulator = OpenAISimulator()
    for _ in range(MAX_RECORDED_REQUESTS + 5):
        simulator._requests.append({})
    assert len(simulator.requests()) == MAX_RECORDED_REQUESTS


# -- other ways to run it ----------------------------------------------------------


@pytest.mark.asyncio
async def test_in_process_async_use() -> None:
    simulator = OpenAISimulator(api_key="sk-other")
    await simulator.start()
    try:
        async with openai.AsyncOpenAI(
            base_url=simulator.openai_base_url, api_key="sk-other", max_retries=0
        ) as c:
            stream = await c.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
            assert text == DEFAULT_REPLY
            assert simulator.stats()["streams_completed"] == 1
    finally:
        await simulator.stop()


def test_stop_while_request_hangs() -> None:
    handle = run_in_thread()
    handle.add_faults({"kind": "timeout"})
    stopper = threading.Timer(0.2, handle.stop)
    with openai.OpenAI(base_url=handle.openai_base_url, api_key=handle.api_key, max_retries=0) as c:
        start = time.monotonic()
        stopper.start()
        # The server drops the hung connection when it stops.
        with pytest.raises(openai.APIConnectionError):
            c.chat.completions.create(model="m", messages=MESSAGES, timeout=5)
        assert time.monotonic() - start < 2
    stopper.join()


def test_cli() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.simulators.openai_sim", "--port", "0", "--api-key", "k"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("openai-sim listening on http://127.0.0.1:")
        base_url = line.split()[-1]
        with openai.OpenAI(base_url=f"{base_url}/v1", api_key="k", max_retries=0) as c:
            completion = c.chat.completions.create(model="m", messages=MESSAGES)
        assert completion.choices[0].message.content == DEFAULT_REPLY
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
