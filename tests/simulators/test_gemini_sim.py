"""Protocol tests of the Gemini simulator, against google-genai's own types and client.

Every raw response and stream event is validated with ``types.GenerateContentResponse``
(whose models forbid unknown fields), and the official client is driven at the simulator,
so the simulator cannot drift from what the SDK (and so the real API) speaks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from google import genai
from google.genai import errors, types

from tests.conformance.contract import Script, ScriptedToolCall, ScriptedUsage
from tests.simulators.gemini_sim import (
    DEFAULT_REPLY,
    GeminiSimulatorHandle,
    run_in_thread,
)

MODEL = "gemini-2.5-flash"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parametersJsonSchema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[GeminiSimulatorHandle]:
    with run_in_thread() as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh(sim: GeminiSimulatorHandle) -> None:
    sim.reset()


@pytest.fixture
def client(sim: GeminiSimulatorHandle) -> genai.Client:
    return genai.Client(
        api_key=sim.api_key,
        http_options=types.HttpOptions(
            base_url=sim.base_url, api_version="v1beta", retry_options=None
        ),
    )


def url(sim: GeminiSimulatorHandle, method: str = "generateContent", model: str = MODEL) -> str:
    return f"{sim.base_url}/v1beta/models/{model}:{method}"


def post(
    sim: GeminiSimulatorHandle,
    body: Any,
    method: str = "generateContent",
    model: str = MODEL,
    key: str | None = "default",
    **params: str,
) -> httpx.Response:
    headers = {} if key is None else {"x-goog-api-key": sim.api_key if key == "default" else key}
    return httpx.post(
        url(sim, method, model), json=body, headers=headers, params=params, timeout=10
    )


def generate(sim: GeminiSimulatorHandle, body: Any) -> dict[str, Any]:
    response = post(sim, body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    types.GenerateContentResponse.model_validate(data)
    return data


def sse_events(sim: GeminiSimulatorHandle, body: Any) -> list[dict[str, Any]]:
    response = post(sim, body, "streamGenerateContent", alt="sse")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\r\n\r\n"):
        if block.strip():
            assert block.startswith("data: ")
            event = json.loads(block[len("data: ") :])
            types.GenerateContentResponse.model_validate(event)
            events.append(event)
    return events


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


# --- the official client ------------------------------------------------------------------


def test_sdk_generate_and_stream(client: genai.Client) -> None:
    result = client.models.generate_content(model=MODEL, contents="Hi there")
    assert result.text == DEFAULT_REPLY
    assert result.candidates and result.candidates[0].finish_reason == types.FinishReason.STOP
    usage = result.usage_metadata
    assert usage is not None and usage.prompt_token_count == 5 and usage.candidates_token_count
    pieces = list(client.models.generate_content_stream(model=MODEL, contents="Hi there"))
    assert len(pieces) > 2
    assert "".join(p.text or "" for p in pieces) == DEFAULT_REPLY
    assert pieces[-1].candidates and pieces[-1].candidates[0].finish_reason == "STOP"


async def test_sdk_async_with_tools_and_thinking(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER)])],  # type: ignore[arg-type]
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=512),
    )
    result = await client.aio.models.generate_content(
        model=MODEL, contents="Weather?", config=config
    )
    assert result.function_calls is not None
    (call,) = result.function_calls
    assert (call.name, call.args) == ("get_weather", {"city": "x"})
    assert result.usage_metadata is not None and result.usage_metadata.thoughts_token_count
    parts = result.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts is not None and parts[0].thought is True


def test_sdk_json_schema(client: genai.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
        "required": ["n", "s"],
    }
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema
    )
    result = client.models.generate_content(model=MODEL, contents="Count", config=config)
    assert json.loads(result.text or "") == {"n": 1, "s": "x"}


def test_sdk_sees_google_errors(sim: GeminiSimulatorHandle) -> None:
    bad = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=sim.base_url))
    with pytest.raises(errors.ClientError) as caught:
        bad.models.generate_content(model=MODEL, contents="x")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "API key not valid" in (caught.value.message or "")


# --- raw protocol -------------------------------------------------------------------------


def test_response_shape_and_usage(sim: GeminiSimulatorHandle) -> None:
    sim.configure(cached_tokens=3)
    data = generate(
        sim,
        {
            "systemInstruction": {"parts": [{"text": "Be kind."}]},
            "contents": [user("What is up?")],
        },
    )
    assert data["candidates"][0]["content"] == {
        "role": "model",
        "parts": [{"text": DEFAULT_REPLY}],
    }
    usage = data["usageMetadata"]
    # (len("Be kind.") + len("What is up?")) // 4 + 3 per turn
    assert usage["promptTokenCount"] == 19 // 4 + 3
    assert usage["cachedContentTokenCount"] == 3
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert data["modelVersion"] == MODEL and data["responseId"]


def test_stream_events(sim: GeminiSimulatorHandle) -> None:
    events = sse_events(sim, {"contents": [user("Hi")]})
    texts = [e["candidates"][0]["content"]["parts"][0]["text"] for e in events]
    assert "".join(texts) == DEFAULT_REPLY and len(texts) > 1
    assert [("finishReason" in e["candidates"][0]) for e in events] == [False] * (
        len(events) - 1
    ) + [True]
    assert "candidatesTokenCount" in events[-1]["usageMetadata"]
    assert "candidatesTokenCount" not in events[0]["usageMetadata"]
    # Without alt=sse the stream is one JSON array of the same responses.
    array = post(sim, {"contents": [user("Hi")]}, "streamGenerateContent")
    assert array.status_code == 200
    for event in array.json():
        types.GenerateContentResponse.model_validate(event)


def test_function_calling_round_trip(sim: GeminiSimulatorHandle) -> None:
    tools = [{"functionDeclarations": [WEATHER, {"name": "ping"}]}]
    first = generate(sim, {"contents": [user("Weather?")], "tools": tools})
    parts = first["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in parts] == ["get_weather", "ping"]
    assert first["candidates"][0]["finishReason"] == "STOP"
    answers = {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "sun"}}},
            {"functionResponse": {"name": "ping", "response": {"output": "pong"}}},
        ],
    }
    second = generate(
        sim,
        {
            "contents": [user("Weather?"), {"role": "model", "parts": parts}, answers],
            "tools": tools,
        },
    )
    assert second["candidates"][0]["content"]["parts"] == [{"text": DEFAULT_REPLY}]
    # ANY forces a call, restricted to the allowed names.
    forced = generate(
        sim,
        {
            "contents": [user("x")],
            "tools": tools,
            "toolConfig": {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["ping"]}
            },
        },
    )
    assert forced["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "ping", "args": {}}}
    ]
    none = generate(
        sim,
        {
            "contents": [user("x")],
            "tools": tools,
            "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
        },
    )
    assert "text" in none["candidates"][0]["content"]["parts"][0]


def test_call_ids_when_configured(sim: GeminiSimulatorHandle) -> None:
    sim.configure(call_ids=True)
    tools = [{"functionDeclarations": [{"name": "ping"}]}]
    data = generate(sim, {"contents": [user("x")], "tools": tools})
    assert data["candidates"][0]["content"]["parts"][0]["functionCall"]["id"]


BAD_REQUESTS = [
    ({"contents": []}, "contents is not specified"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
    ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
    ({"contents": [user("x")], "messages": []}, 'Unknown name "messages"'),
    (
        {"contents": [user("x")], "generationConfig": {"max_tokens": 5}},
        'Unknown name "max_tokens"',
    ),
    ({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {}}]}]}, "oneof"),
    (
        {
            "contents": [
                {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "@@"}}]}
            ]
        },
        "Base64 decoding failed",
    ),
    (
        {
            "contents": [
                user("x"),
                {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}]},
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "a", "response": {}}},
                        {"functionResponse": {"name": "a", "response": {}}},
                    ],
                },
            ]
        },
        "number of function response parts is equal",
    ),
    (
        {
            "contents": [
                user("x"),
                {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {}}}]},
            ]
        },
        "immediately after a function call turn",
    ),
    (
        {
            "contents": [
                user("x"),
                {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "b", "response": {}}}]},
            ]
        },
        "names match",
    ),
    (
        {
            "contents": [user("x")],
            "tools": [
                {
                    "functionDeclarations": [
                        {"name": "a", "parameters": {}, "parametersJsonSchema": {}}
                    ]
                }
            ],
        },
        "mutually exclusive",
    ),
    (
        {"contents": [user("x")], "generationConfig": {"responseJsonSchema": {"type": "object"}}},
        "response_mime_type",
    ),
    ({"contents": [user("x")], "generationConfig": {"candidateCount": 2}}, "Multiple candidates"),
]


@pytest.mark.parametrize(("body", "message"), BAD_REQUESTS)
def test_invalid_requests(sim: GeminiSimulatorHandle, body: Any, message: str) -> None:
    response = post(sim, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    assert message in error["message"]


def test_thinking_rules_per_model(sim: GeminiSimulatorHandle) -> None:
    off = {"contents": [user("x")], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    assert post(sim, off).status_code == 200
    pro = post(sim, off, model="gemini-2.5-pro")
    assert (
        pro.status_code == 400 and "only works in thinking mode" in pro.json()["error"]["message"]
    )
    assert post(sim, off, model="gemini-2.0-flash-001").status_code == 400


def test_auth_and_unknown_models(sim: GeminiSimulatorHandle) -> None:
    missing = post(sim, {"contents": [user("x")]}, key=None)
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = post(sim, {"contents": [user("x")]}, key="nope")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    by_query = httpx.post(url(sim), json={"contents": [user("x")]}, params={"key": sim.api_key})
    assert by_query.status_code == 200
    unknown = post(sim, {"contents": [user("x")]}, model="gemini-9")
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    recorded = sim.requests()
    assert all(sim.api_key not in json.dumps(r) for r in recorded)
    assert [r["auth_ok"] for r in recorded] == [False, False, True, True]


def test_limits_stops_and_overrides(sim: GeminiSimulatorHandle) -> None:
    short = generate(sim, {"contents": [user("x")], "generationConfig": {"maxOutputTokens": 2}})
    assert short["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert short["candidates"][0]["content"]["parts"][0]["text"] == "Hello from"
    stopped = generate(
        sim, {"contents": [user("x")], "generationConfig": {"stopSequences": [" Gem"]}}
    )
    assert stopped["candidates"][0]["content"]["parts"][0]["text"] == "Hello from"
    sim.configure(finish_reason="RECITATION")
    assert generate(sim, {"contents": [user("x")]})["candidates"][0]["finishReason"] == "RECITATION"
    sim.configure(block_reason="SAFETY")
    blocked = generate(sim, {"contents": [user("x")]})
    assert "candidates" not in blocked
    assert blocked["promptFeedback"] == {"blockReason": "SAFETY"}
    (event,) = sse_events(sim, {"contents": [user("x")]})
    assert event["promptFeedback"] == {"blockReason": "SAFETY"}


def test_script(sim: GeminiSimulatorHandle) -> None:
    script = Script(
        text="The answer is 42.",
        reasoning="Think hard.",
        tool_calls=[ScriptedToolCall(id="t1", name="lookup", arguments={"q": "life"})],
        finish_reason="tool_calls",
        usage=ScriptedUsage(
            prompt_tokens=100, completion_tokens=30, cached_tokens=60, reasoning_tokens=10
        ),
    )
    response = httpx.post(f"{sim.base_url}/__sim/script", content=msgspec.json.encode(script))
    assert response.status_code == 200
    data = generate(sim, {"contents": [user("x")]})
    assert data["candidates"][0]["content"]["parts"] == [
        {"text": "Think hard.", "thought": True},
        {"text": "The answer is 42."},
        {"functionCall": {"id": "t1", "name": "lookup", "args": {"q": "life"}}},
    ]
    assert data["usageMetadata"]["promptTokenCount"] == 100
    assert data["usageMetadata"]["cachedContentTokenCount"] == 60
    assert data["usageMetadata"]["candidatesTokenCount"] == 20  # excludes thoughts
    assert data["usageMetadata"]["thoughtsTokenCount"] == 10
    events = sse_events(sim, {"contents": [user("x")]})
    thoughts = [e for e in events if e["candidates"][0]["content"]["parts"][0].get("thought")]
    assert len(thoughts) >= 2
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    deleted = httpx.delete(f"{sim.base_url}/__sim/script")
    assert deleted.status_code == 200
    plain = generate(sim, {"contents": [user("x")]})
    assert plain["candidates"][0]["content"]["parts"] == [{"text": DEFAULT_REPLY}]
    recorded = httpx.get(f"{sim.base_url}/__sim/requests").json()
    assert recorded[0]["body"] == {"contents": [user("x")]}


# --- faults -------------------------------------------------------------------------------


def test_rate_limit_and_overload(sim: GeminiSimulatorHandle) -> None:
    sim.add_faults(
        {"kind": "status", "status": 429, "retry_after": 7}, {"kind": "status", "status": 503}
    )
    limited = post(sim, {"contents": [user("x")]})
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error[
        "details"
    ]
    overloaded = post(sim, {"contents": [user("x")]})
    assert overloaded.status_code == 503 and overloaded.json()["error"]["status"] == "UNAVAILABLE"
    assert post(sim, {"contents": [user("x")]}).status_code == 200


def test_reset_and_disconnect(sim: GeminiSimulatorHandle) -> None:
    sim.add_faults({"kind": "reset"})
    with pytest.raises(httpx.TransportError):
        post(sim, {"contents": [user("x")]})
    sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    with pytest.raises(httpx.TransportError):
        post(sim, {"contents": [user("x")]}, "streamGenerateContent", alt="sse")


def test_latency_and_timeout(sim: GeminiSimulatorHandle) -> None:
    sim.add_faults({"kind": "latency", "ms": 300})
    response = post(sim, {"contents": [user("x")]})
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3
    sim.add_faults({"kind": "timeout"})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            url(sim),
            json={"contents": [user("x")]},
            headers={"x-goog-api-key": sim.api_key},
            timeout=0.5,
        )


def test_rejected_request_keeps_its_fault(sim: GeminiSimulatorHandle) -> None:
    sim.add_faults({"kind": "status", "status": 503})
    assert post(sim, {"contents": []}).status_code == 400
    assert post(sim, {"contents": [user("x")]}).status_code == 503
