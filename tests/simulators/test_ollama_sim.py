"""The Ollama simulator, driven by the official ``ollama`` client and checked against its types.

Every raw reply object must validate as ``ollama.ChatResponse`` and dump back unchanged (no
field the type does not declare, nothing coerced), so the simulator cannot drift from what
the client, and so Ollama, speaks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from tests.conformance.contract import Script, ScriptedToolCall, ScriptedUsage
from tests.simulators.ollama_sim import DEFAULT_REPLY, OllamaSimulatorHandle, run_in_thread

MESSAGES: list[Any] = [{"role": "user", "content": "What is up?"}]
TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SCRIPT = Script(
    text="The weather is fine.",
    reasoning="Let me think about this.",
    tool_calls=[ScriptedToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"})],
    finish_reason="tool_calls",
    usage=ScriptedUsage(prompt_tokens=12, completion_tokens=7),
)


@pytest.fixture(scope="module")
def sim() -> Iterator[OllamaSimulatorHandle]:
    handle = run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(sim: OllamaSimulatorHandle) -> None:
    sim.reset()


@pytest.fixture
def client(sim: OllamaSimulatorHandle) -> ollama.Client:
    return ollama.Client(host=sim.base_url, timeout=5)


def strict(raw: dict[str, Any]) -> ollama.ChatResponse:
    parsed = ollama.ChatResponse.model_validate(raw)
    assert parsed.model_dump(mode="json", exclude_unset=True) == raw
    return parsed


def raw_chat(sim: OllamaSimulatorHandle, **body: Any) -> list[dict[str, Any]]:
    body.setdefault("model", "llama3.1:8b")
    body.setdefault("messages", MESSAGES)
    response = httpx.post(f"{sim.base_url}/api/chat", json=body, timeout=5)
    assert response.status_code == 200, response.text
    if body.get("stream", True):
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.text.endswith("\n")
        return [json.loads(line) for line in response.text.splitlines()]
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return [response.json()]


def test_non_streamed_reply(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    (raw,) = raw_chat(sim, stream=False)
    reply = strict(raw)
    assert reply.done is True and reply.done_reason == "stop"
    assert reply.message.role == "assistant" and reply.message.content == DEFAULT_REPLY
    assert reply.prompt_eval_count == len("What is up?") // 4 + 3
    assert reply.eval_count == 5
    parsed = client.chat(model="llama3.1:8b", messages=MESSAGES)
    assert parsed.message.content == DEFAULT_REPLY


def test_streamed_reply(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    lines = raw_chat(sim)
    for line in lines:
        strict(line)
    *pieces, last = lines
    assert len(pieces) == 5 and not any(line["done"] for line in pieces)
    assert "".join(line["message"]["content"] for line in pieces) == DEFAULT_REPLY
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["message"] == {"role": "assistant", "content": ""}
    assert last["eval_count"] == 5
    text = "".join(part.message.content or "" for part in client.chat("m", MESSAGES, stream=True))
    assert text == DEFAULT_REPLY


def test_scripted_reply_non_streamed(sim: OllamaSimulatorHandle) -> None:
    sim.set_script(SCRIPT)
    (raw,) = raw_chat(sim, stream=False)
    reply = strict(raw)
    assert reply.message.thinking == SCRIPT.reasoning
    assert reply.message.content == SCRIPT.text
    (call,) = reply.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Oslo"}
    assert (reply.prompt_eval_count, reply.eval_count) == (12, 7)


def test_scripted_reply_streamed(sim: OllamaSimulatorHandle) -> None:
    sim.set_script(SCRIPT)
    lines = raw_chat(sim)
    messages = [strict(line).message for line in lines]
    thinking = [m.thinking for m in messages if m.thinking]
    content = [m.content for m in messages if m.content]
    assert len(thinking) >= 2 and "".join(thinking) == SCRIPT.reasoning
    assert len(content) >= 2 and "".join(content) == SCRIPT.text
    calls = [c for m in messages for c in m.tool_calls or ()]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert lines[-1]["done"] and lines[-1]["eval_count"] == 7


def test_script_over_http_and_requests(sim: OllamaSimulatorHandle) -> None:
    script = {"text": "scripted", "finish_reason": "length"}
    assert httpx.post(f"{sim.base_url}/__sim/script", json=script).status_code == 200
    (raw,) = raw_chat(sim, stream=False, options={"num_predict": 3})
    assert raw["message"]["content"] == "scripted" and raw["done_reason"] == "length"
    assert httpx.delete(f"{sim.base_url}/__sim/script").status_code == 200
    (raw,) = raw_chat(sim, stream=False)
    assert raw["message"]["content"] == DEFAULT_REPLY
    recorded = httpx.get(f"{sim.base_url}/__sim/requests").json()
    assert [r["body"].get("options") for r in recorded] == [{"num_predict": 3}, None]
    assert httpx.post(f"{sim.base_url}/__sim/script", json={"txt": 1}).status_code == 200
    assert httpx.post(f"{sim.base_url}/__sim/script", content=b"{").status_code == 400


def test_default_tool_call(client: ollama.Client) -> None:
    reply = client.chat(model="m", messages=MESSAGES, tools=[TOOL], stream=False)
    (call,) = reply.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "x"}


def test_client_sends_images_and_tool_results(
    client: ollama.Client, sim: OllamaSimulatorHandle
) -> None:
    messages: Any = [
        {"role": "user", "content": "look", "images": ["iVBORw0KGgo="]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "x"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    client.chat(model="m", messages=messages)
    body = sim.requests()[-1]["body"]
    assert body["messages"][0]["images"] == ["iVBORw0KGgo="]
    assert body["messages"][2]["tool_name"] == "get_weather"


def test_bad_requests(sim: OllamaSimulatorHandle) -> None:
    missing = httpx.post(f"{sim.base_url}/api/chat", json={"messages": MESSAGES})
    assert missing.status_code == 400 and missing.json() == {"error": "model is required"}
    bad = httpx.post(
        f"{sim.base_url}/api/chat", json={"model": "m", "messages": [{"content": "no role"}]}
    )
    assert bad.status_code == 400 and "error" in bad.json()


# -- faults --------------------------------------------------------------------------------


def test_status_fault(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    sim.add_faults({"kind": "status", "status": 503, "retry_after": 2})
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="m", messages=MESSAGES)
    assert info.value.status_code == 503 and info.value.error == "simulated HTTP 503"
    assert client.chat(model="m", messages=MESSAGES).message.content == DEFAULT_REPLY


def test_latency_fault(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    sim.add_faults({"kind": "latency", "ms": 200})
    start = time.monotonic()
    client.chat(model="m", messages=MESSAGES)
    assert time.monotonic() - start >= 0.2


def test_reset_fault(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    sim.add_faults({"kind": "reset"})
    with pytest.raises((httpx.TransportError, ConnectionError)):
        client.chat(model="m", messages=MESSAGES)


def test_disconnect_mid_stream(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    received = []
    with pytest.raises((httpx.TransportError, ConnectionError)):
        for part in client.chat(model="m", messages=MESSAGES, stream=True):
            received.append(part.message.content)
    assert received == ["Hello", " from"]


def test_timeout_fault(sim: OllamaSimulatorHandle) -> None:
    sim.add_faults({"kind": "timeout"})
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        ollama.Client(host=sim.base_url, timeout=0.3).chat(model="m", messages=MESSAGES)
    assert 0.3 <= time.monotonic() - start < 2


def test_slow_tokens_fault(client: ollama.Client, sim: OllamaSimulatorHandle) -> None:
    sim.add_faults({"kind": "slow_tokens", "ms": 40})
    start = time.monotonic()
    parts = list(client.chat(model="m", messages=MESSAGES, stream=True))
    assert len(parts) == 6 and time.monotonic() - start >= 5 * 0.04
