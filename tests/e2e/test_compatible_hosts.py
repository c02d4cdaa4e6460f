"""OpenAI-compatible hosts and Ollama, end to end through the real server.

Groq, Mistral and OpenRouter are pointed at the OpenAI simulator: what it records shows each
host's parameter map applied on the wire. Ollama is pointed at its own simulator and driven
with the official openai SDK, streamed and not, with tools.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.conformance.cases.ollama import CASE, summarize
from tests.conformance.contract import Script, ScriptedToolCall, ScriptedUsage
from tests.servers import RunningServer, start_server
from tests.simulators import ollama_sim
from tests.simulators.openai_sim import SimulatorHandle, run_in_thread

MISTRAL = "mistralai/mistral-large-2411"
LLAMA = "meta-llama/llama-3.3-70b-instruct"
QWEN = "qwen/qwen3-32b"
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
ONLY_OLLAMA = {"provider": {"only": ["ollama"]}}


@dataclass
class Hosts:
    server: RunningServer
    openai: SimulatorHandle
    ollama: ollama_sim.OllamaSimulatorHandle

    def chat(self, **body: Any) -> httpx.Response:
        body.setdefault("messages", [{"role": "user", "content": "Hello"}])
        return httpx.post(
            f"{self.server.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {self.server.api_key}"},
            timeout=30,
        )

    def sent(self) -> dict[str, Any]:
        """The last body the OpenAI simulator received."""
        body: dict[str, Any] = self.openai.requests()[-1]["body"]
        return body


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    openai_sim, ollama = run_in_thread(), ollama_sim.run_in_thread()
    sim_v1 = f"{openai_sim.base_url}/v1"
    config = "breaker_failures = 100000\n\n[local]\nenabled = false\n\n" + "".join(
        f'[providers.{slug}]\napi_key = "sk-sim-test"\nbase_url = "{sim_v1}"\n\n'
        for slug in ("groq", "mistral", "openrouter")
    )
    config += f'[providers.ollama]\nbase_url = "{ollama.base_url}"\n'
    server = start_server(tmp_path_factory.mktemp("hosts"), config)
    yield Hosts(server, openai_sim, ollama)
    server.stop()
    openai_sim.stop()
    ollama.stop()


@pytest.fixture
def fresh(hosts: Hosts) -> Hosts:
    hosts.openai.reset()
    hosts.ollama.reset()
    return hosts


@pytest.fixture
def client(hosts: Hosts) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=hosts.server.base_url, api_key=hosts.server.api_key, max_retries=0, timeout=30
    ) as c:
        yield c


# --- quirks on the wire ---------------------------------------------------------------------


def test_mistral_parameter_map_on_the_wire(fresh: Hosts) -> None:
    response = fresh.chat(
        model=MISTRAL,
        seed=7,
        max_completion_tokens=20,
        tools=[TOOL],
        tool_choice="required",
        user="u-1",
        top_k=5,
    )
    assert response.status_code == 200, response.text
    assert response.json()["provider"] == "Mistral"
    sent = fresh.sent()
    assert sent["model"] == "mistral-large-2411"
    assert sent["random_seed"] == 7 and sent["max_tokens"] == 20
    assert sent["tool_choice"] == "any"
    assert not {"seed", "max_completion_tokens", "user", "top_k"} & sent.keys()


def test_mistral_stream_does_not_ask_for_stream_options(fresh: Hosts) -> None:
    with httpx.stream(
        "POST",
        f"{fresh.server.base_url}/chat/completions",
        json={"model": MISTRAL, "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        headers={"Authorization": f"Bearer {fresh.server.api_key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())
    assert "Hello from the simulator." in "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in text.splitlines()
        if line.startswith("data: {") and '"choices":[{' in line
    )
    sent = fresh.sent()
    assert sent["stream"] is True and "stream_options" not in sent


def test_groq_parameter_map_on_the_wire(fresh: Hosts) -> None:
    response = fresh.chat(
        model=LLAMA,
        service_tier="default",
        logprobs=True,
        top_logprobs=2,
        seed=3,
        provider={"only": ["groq"]},
    )
    assert response.status_code == 200, response.text
    sent = fresh.sent()
    assert sent["model"] == "llama-3.3-70b-versatile"
    assert sent["service_tier"] == "on_demand" and sent["seed"] == 3
    assert not {"logprobs", "top_logprobs"} & sent.keys()


def test_openrouter_attribution_headers(fresh: Hosts) -> None:
    response = fresh.chat(model=LLAMA, provider={"only": ["openrouter"]})
    assert response.status_code == 200, response.text
    headers = fresh.openai.requests()[-1]["headers"]
    assert headers["x-title"] == "Switchyard" and headers["http-referer"] == "http://localhost"
    assert fresh.sent()["model"] == "meta-llama/llama-3.3-70b-instruct"


# --- Ollama through the openai SDK ----------------------------------------------------------


def test_ollama_completion(fresh: Hosts, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=16,
        temperature=0.2,
        extra_body=ONLY_OLLAMA,
    )
    assert completion.choices[0].message.content == ollama_sim.DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    (record,) = fresh.ollama.requests()
    assert record["path"] == "/api/chat"
    body = record["body"]
    assert body["model"] == "qwen3:32b" and body["stream"] is False
    assert body["options"] == {"temperature": 0.2, "num_predict": 16}
    summary = summarize(body)
    assert summary.system == "Be brief." and summary.max_output_tokens == 16


def test_ollama_stream(fresh: Hosts, client: openai.OpenAI) -> None:
    fresh.ollama.set_script(
        Script(
            text="Fine, thanks.",
            reasoning="Answer politely.",
            usage=ScriptedUsage(prompt_tokens=9, completion_tokens=4),
        )
    )
    stream = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "How are you?"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={**ONLY_OLLAMA, "reasoning": {"effort": "low"}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices
    )
    assert text == "Fine, thanks." and reasoning == "Answer politely."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 4)
    assert fresh.ollama.requests()[-1]["body"]["think"] is True


def test_ollama_tools(fresh: Hosts, client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Oslo?"}]
    completion = client.chat.completions.create(
        model=QWEN, messages=messages, tools=[TOOL], extra_body=ONLY_OLLAMA
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "x"}

    # Answer the call; the tool result reaches Ollama named by function, as it expects.
    followup: Any = [
        *messages,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    stream = client.chat.completions.create(
        model=QWEN, messages=followup, tools=[TOOL], stream=True, extra_body=ONLY_OLLAMA
    )
    deltas = [c.choices[0] for c in stream if c.choices]
    calls = [tc for d in deltas for tc in d.delta.tool_calls or ()]
    assert [tc.function.name for tc in calls if tc.function] == ["get_weather"]
    assert deltas[-1].finish_reason == "tool_calls"
    sent = fresh.ollama.requests()[-1]["body"]["messages"]
    assert sent[1]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "x"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_ollama_error_keeps_its_message(fresh: Hosts) -> None:
    fresh.ollama.add_faults({"kind": "status", "status": 500})
    response = fresh.chat(model=QWEN, **ONLY_OLLAMA)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["metadata"]["raw"] == "simulated HTTP 500"
    assert error["metadata"]["provider_name"] == "Ollama"


def test_ollama_broken_stream_is_reported(fresh: Hosts, client: openai.OpenAI) -> None:
    fresh.ollama.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    stream = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        extra_body=ONLY_OLLAMA,
    )
    text = []
    # The text that arrived, then an error chunk, which the SDK raises.
    with pytest.raises(openai.APIError, match="Ollama closed the connection"):
        for chunk in stream:
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(text) == "Hello from"


def test_conformance_case_names_a_served_model(hosts: Hosts) -> None:
    response = httpx.get(
        f"{hosts.server.base_url}/models/{CASE.model}/endpoints",
        headers={"Authorization": f"Bearer {hosts.server.api_key}"},
    )
    assert response.status_code == 200, response.text
    providers = {e["provider_name"] for e in response.json()["data"]["endpoints"]}
    assert "Ollama" in providers


# --- the conformance case, round trip -------------------------------------------------------

# A 1x1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)


@pytest.mark.parametrize("stream", [False, True])
def test_conformance_case_round_trip(
    tmp_path_factory: pytest.TempPathFactory, stream: bool
) -> None:
    running = asyncio.run(CASE.start_simulator())
    server = start_server(
        tmp_path_factory.mktemp("case"),
        "[local]\nenabled = false\n\n"
        f'[providers.{CASE.provider}]\nbase_url = "{running.base_url}"\n',
    )
    try:
        script = Script(
            text="It is sunny.",
            reasoning="Check the tool result.",
            tool_calls=[ScriptedToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"})],
            finish_reason="tool_calls",
            usage=ScriptedUsage(prompt_tokens=21, completion_tokens=8),
        )
        asyncio.run(running.set_script(script))
        messages: Any = [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather where this was taken?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ]
        with openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0) as c:
            kwargs: Any = {"model": CASE.model, "messages": messages, "tools": [TOOL]}
            kwargs |= {"max_tokens": 32, "temperature": 0.5}
            if stream:
                chunks = list(
                    c.chat.completions.create(
                        **kwargs, stream=True, stream_options={"include_usage": True}
                    )
                )
                text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
                reasoning = "".join(
                    (ch.choices[0].delta.model_extra or {}).get("reasoning") or ""
                    for ch in chunks
                    if ch.choices
                )
                calls = [
                    tc for ch in chunks if ch.choices for tc in ch.choices[0].delta.tool_calls or ()
                ]
                names_args = [
                    (tc.function.name, tc.function.arguments) for tc in calls if tc.function
                ]
                finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1]
                usage = chunks[-1].usage
            else:
                completion = c.chat.completions.create(**kwargs)
                message = completion.choices[0].message
                text = message.content or ""
                reasoning = (message.model_extra or {}).get("reasoning") or ""
                names_args = [
                    (tc.function.name, tc.function.arguments)
                    for tc in message.tool_calls or ()
                    if tc.type == "function"
                ]
                finish = completion.choices[0].finish_reason
                usage = completion.usage
        assert text == script.text and reasoning == script.reasoning
        assert [(n, json.loads(a or "")) for n, a in names_args] == [
            ("get_weather", {"city": "Oslo"})
        ]
        assert finish == "tool_calls"
        assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (21, 8)

        (sent,) = asyncio.run(running.requests())
        summary = CASE.summarize(sent)
        assert summary.system == "Be brief." and summary.stream is stream
        assert summary.max_output_tokens == 32 and summary.temperature == 0.5
        user, assistant, tool = summary.messages
        assert user.text == "Weather where this was taken?"
        assert [(i.media_type, i.data) for i in user.images] == [("image/png", PNG)]
        assert [(t.name, t.arguments) for t in assistant.tool_calls] == [
            ("get_weather", {"city": "Oslo"})
        ]
        assert (tool.role, tool.text, tool.tool_name) == ("tool", "sunny", "get_weather")
        assert [t.name for t in summary.tools] == ["get_weather"]
    finally:
        server.stop()
        asyncio.run(running.stop())
