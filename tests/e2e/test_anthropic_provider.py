"""Claude through Switchyard: a real server whose only provider is Anthropic (simulated),
called with the official openai SDK, streamed and not, with tools and reasoning."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.servers import RunningServer, start_server
from tests.simulators.anthropic_sim import (
    DEFAULT_REPLY,
    DEFAULT_THINKING,
    SimulatorHandle,
    run_in_thread,
)

HAIKU = "anthropic/claude-haiku-4.5"
CATALOG = Path(__file__).resolve().parents[2] / "src/switchyard/catalog/data/anthropic.yaml"
WEATHER = {
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


def catalog_prices(model: str) -> dict[str, Decimal]:
    """The endpoint's prices, read from the data file itself."""
    data = yaml.safe_load(CATALOG.read_text("utf-8"))
    (endpoint,) = [e for e in data["endpoints"] if e["model"] == model]
    return {name: Decimal(value) for name, value in endpoint["pricing"].items()}


@pytest.fixture(scope="module")
def claude_sim() -> Iterator[SimulatorHandle]:
    with run_in_thread() as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh(claude_sim: SimulatorHandle) -> None:
    claude_sim.reset()


@pytest.fixture(scope="module")
def claude_server(
    claude_sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        "keepalive_interval = 0.2\nbreaker_failures = 100000\n\n[local]\nenabled = false\n\n"
        f'[providers.anthropic]\napi_key = "{claude_sim.api_key}"\n'
        f'base_url = "{claude_sim.base_url}"\n'
    )
    running = start_server(tmp_path_factory.mktemp("anthropic"), config)
    yield running
    running.stop()


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def expected_cost(usage: dict[str, Any], model: str) -> Decimal:
    prices = catalog_prices(model)
    details = usage["prompt_tokens_details"]
    cached, written = details["cached_tokens"], details.get("cache_write_tokens", 0)
    return (
        (usage["prompt_tokens"] - cached - written) * prices["prompt"]
        + cached * prices["input_cache_read"]
        + written * prices["input_cache_write"]
        + usage["completion_tokens"] * prices["completion"]
    )


def raw_chat(server: RunningServer, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=30,
    )


def test_completion_is_priced_from_the_catalog(
    claude_server: RunningServer, claude_sim: SimulatorHandle
) -> None:
    claude_sim.configure(cache_read_tokens=4, cache_write_tokens=2)
    response = raw_chat(
        claude_server,
        model=HAIKU,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello to everyone in the room, please."},
        ],
        max_tokens=50,
    )
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["model"] == HAIKU and body["provider"] == "Anthropic"
    choice = body["choices"][0]
    assert choice["message"]["content"] == DEFAULT_REPLY
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "end_turn")
    usage = body["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 2
    assert usage["completion_tokens"] == 5
    assert usage["cost"] == expected_cost(usage, HAIKU) > 0

    (sent,) = claude_sim.requests()
    assert sent["auth_ok"] and sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["body"]["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent["body"]["model"] == "claude-haiku-4-5-20251001"
    assert sent["body"]["max_tokens"] == 50


def test_stream_is_priced_from_the_catalog(claude_server: RunningServer) -> None:
    stream = client(claude_server).chat.completions.create(
        model=HAIKU,
        messages=[{"role": "user", "content": "Hello?"}],
        max_tokens=50,
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_REPLY
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 5
    raw = usage.model_dump()
    assert Decimal(str(raw["cost"])) == expected_cost(raw, HAIKU)


def test_tools_round_trip(claude_server: RunningServer, claude_sim: SimulatorHandle) -> None:
    sdk = client(claude_server)
    messages: list[Any] = [{"role": "user", "content": "Weather in Lyon?"}]
    first = sdk.chat.completions.create(
        model=HAIKU,
        messages=messages,
        tools=[WEATHER],
        max_tokens=100,  # type: ignore[list-item]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "x"}  # type: ignore[union-attr]

    # The answer goes back as a tool message; the simulator checks the ids match.
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 C"},
    ]
    stream = sdk.chat.completions.create(
        model=HAIKU,
        messages=messages,
        tools=[WEATHER],
        max_tokens=100,
        stream=True,  # type: ignore[list-item]
    )
    calls: dict[int, list[str]] = {}
    for chunk in stream:
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(delta_call.index, ["", "", ""])
            entry[0] += delta_call.id or ""
            if delta_call.function:
                entry[1] += delta_call.function.name or ""
                entry[2] += delta_call.function.arguments or ""
    assert list(calls) == [0]
    assert calls[0][0].startswith("toolu_") and calls[0][1] == "get_weather"
    assert json.loads(calls[0][2]) == {"city": "x"}
    last = claude_sim.requests()[-1]["body"]
    assert last["messages"][1]["content"][0]["type"] == "tool_use"
    assert last["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": [{"type": "text", "text": "18 C"}],
    }


def test_reasoning_comes_back_with_details(claude_server: RunningServer) -> None:
    response = raw_chat(
        claude_server,
        model=HAIKU,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=4096,
        reasoning={"effort": "low"},
    )
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["reasoning"] == DEFAULT_THINKING
    (detail,) = message["reasoning_details"]
    assert detail["type"] == "reasoning.text" and detail["format"] == "anthropic-claude-v1"
    assert detail["signature"].startswith("sim-sig-")
    assert response.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_bad_tool_arguments_are_a_400_naming_the_field(claude_server: RunningServer) -> None:
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{oops"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
    ]
    response = raw_chat(claude_server, model=HAIKU, messages=messages, tools=[WEATHER])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["metadata"]["field"] == "messages[1].tool_calls[0].function.arguments"


def test_overloaded_upstream_is_a_503_with_the_raw_error(
    claude_server: RunningServer, claude_sim: SimulatorHandle
) -> None:
    claude_sim.add_faults({"kind": "status", "status": 529})
    response = raw_chat(claude_server, model=HAIKU, messages=[{"role": "user", "content": "Hi"}])
    assert response.status_code == 503
    metadata = response.json()["error"]["metadata"]
    assert metadata["raw"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert metadata["upstream_status"] == 529


def test_error_event_mid_stream_ends_with_an_error_chunk(
    claude_server: RunningServer, claude_sim: SimulatorHandle
) -> None:
    claude_sim.add_faults({"kind": "error_event", "after_events": 4})
    with httpx.stream(
        "POST",
        f"{claude_server.base_url}/chat/completions",
        json={"model": HAIKU, "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        headers={"Authorization": f"Bearer {claude_server.api_key}"},
        timeout=30,
    ) as response:
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    last = json.loads(frames[-1])
    assert last["choices"][0]["finish_reason"] == "error"
    assert last["error"]["metadata"]["raw"]["type"] == "overloaded_error"
    assert "[DONE]" not in frames


def test_cancelled_stream_pays_for_its_prompt(
    claude_server: RunningServer, claude_sim: SimulatorHandle
) -> None:
    claude_sim.add_faults({"kind": "slow_events", "ms": 300})
    generation_id = ""
    with httpx.stream(
        "POST",
        f"{claude_server.base_url}/chat/completions",
        json={"model": HAIKU, "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        headers={"Authorization": f"Bearer {claude_server.api_key}"},
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                generation_id = json.loads(line[6:])["id"]
                break  # the client goes away after the first chunk
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{claude_server.base_url}/generation",
            params={"id": generation_id},
            headers={"Authorization": f"Bearer {claude_server.api_key}"},
        )
        if found.status_code == 200:
            break
        time.sleep(0.05)
    record = json.loads(found.text, parse_float=Decimal)["data"]
    assert record["cancelled"] is True
    # Anthropic told us the prompt's size at message_start; that much is charged.
    prices = catalog_prices(HAIKU)
    assert record["tokens_prompt"] > 0
    expected = (
        record["tokens_prompt"] * prices["prompt"]
        + record["tokens_completion"] * (prices["completion"])
    )
    assert record["total_cost"] == expected > 0
