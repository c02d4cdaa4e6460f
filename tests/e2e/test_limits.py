"""Limits on message count and stream duration."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o"
MAX_MESSAGES = 4
MAX_STREAM_SECONDS = 1.5


@pytest.fixture(scope="module")
def limited(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        f"max_messages = {MAX_MESSAGES}\nmax_stream_seconds = {MAX_STREAM_SECONDS}\n"
        "keepalive_interval = 0.2\n\n[local]\nenabled = false\n\n"
        + provider_config(sim.base_url, azure=False)
    )
    running = start_server(tmp_path_factory.mktemp("limits"), config)
    yield running
    running.stop()


def _auth(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def _messages(n: int) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi"} for i in range(n)]


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/chat/completions", {}),
        ("/messages", {"max_tokens": 5}),
    ],
)
def test_too_many_messages_is_a_400_naming_messages(
    limited: RunningServer, fresh_sim: SimulatorHandle, path: str, extra: dict[str, Any]
) -> None:
    body = {"model": GPT, "messages": _messages(MAX_MESSAGES + 1), **extra}
    response = httpx.post(f"{limited.base_url}{path}", json=body, headers=_auth(limited))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "`messages`" in error["message"] and str(MAX_MESSAGES) in error["message"]
    if path == "/chat/completions":
        assert error["metadata"]["field"] == "messages"
    else:  # the Anthropic error shape has no metadata
        assert error["type"] == "invalid_request_error"
    assert fresh_sim.requests() == []  # refused before any provider was asked

    body["messages"] = _messages(MAX_MESSAGES - 1)
    ok = httpx.post(f"{limited.base_url}{path}", json=body, headers=_auth(limited), timeout=30)
    assert ok.status_code == 200, ok.text


def test_a_stream_past_the_limit_ends_in_band_and_is_charged(
    limited: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(chunks=200)
    fresh_sim.add_faults({"kind": "slow_tokens", "ms": 100})  # ~20 s of tokens
    started = time.monotonic()
    events: list[Any] = []
    with httpx.stream(
        "POST",
        f"{limited.base_url}/chat/completions",
        headers=_auth(limited),
        json={"model": GPT, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
    elapsed = time.monotonic() - started
    assert MAX_STREAM_SECONDS <= elapsed < MAX_STREAM_SECONDS + 2
    assert "[DONE]" not in events
    last = events[-1]
    assert last["error"]["code"] == 408
    assert "longer than" in last["error"]["message"]
    assert last["choices"][0]["finish_reason"] == "error"
    # The upstream request was stopped, not left running.
    deadline = time.monotonic() + 5
    while fresh_sim.stats()["cancelled_streams"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh_sim.stats()["cancelled_streams"] == 1
    # Settled: the generation is recorded and pays for the tokens that were sent.
    generated = sum(
        1 for e in events[:-1] if e["choices"] and e["choices"][0]["delta"].get("content")
    )
    deadline = time.monotonic() + 5
    while True:
        found = httpx.get(
            f"{limited.base_url}/generation", params={"id": last["id"]}, headers=_auth(limited)
        )
        if found.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found.status_code == 200, found.text
    record = found.json()["data"]
    assert record["tokens_completion"] >= generated > 5
    assert record["total_cost"] > 0
