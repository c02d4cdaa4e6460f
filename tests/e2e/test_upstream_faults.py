"""Upstreams that are down (nothing listens) or slow (hung, or stalling mid-stream): the
client never hangs; another provider serves when one can; otherwise a clear error in
our shape, naming the provider. (test_failures.py covers 5xx, 429, resets and cut
streams; these are the cases it does not.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, free_port, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o"
READ_TIMEOUT = 1.0
OPENAI_FIRST = {"order": ["openai", "azure"]}


@pytest.fixture(scope="module")
def impatient(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Both simulated providers, a short read timeout, breakers that never open."""
    config = (
        f"upstream_read_timeout = {READ_TIMEOUT}\nbreaker_failures = 100000\n\n"
        "[local]\nenabled = false\n\n" + provider_config(sim.base_url)
    )
    running = start_server(tmp_path_factory.mktemp("impatient"), config)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def unreachable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """OpenAI configured at an address where nothing listens."""
    dead = f"http://127.0.0.1:{free_port()}"
    config = "[local]\nenabled = false\n\n" + provider_config(dead, azure=False)
    running = start_server(tmp_path_factory.mktemp("unreachable"), config)
    yield running
    running.stop()


def _post(server: RunningServer, **body: Any) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": GPT, "max_tokens": 5, **body},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=30,
    )


def test_a_hung_provider_times_out_and_the_next_one_serves(
    impatient: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "timeout"})
    started = time.monotonic()
    response = _post(impatient, provider=OPENAI_FIRST)
    assert response.status_code == 200
    assert response.json()["provider"] == "Azure"
    assert READ_TIMEOUT <= time.monotonic() - started < READ_TIMEOUT + 3


def test_a_hung_provider_with_no_fallback_is_a_408_naming_it(
    impatient: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "timeout"})
    started = time.monotonic()
    response = _post(impatient, provider={"only": ["openai"]})
    assert time.monotonic() - started < READ_TIMEOUT + 3
    assert response.status_code == 408
    error = response.json()["error"]
    assert error["code"] == 408 and error["metadata"]["provider_name"] == "OpenAI"


def test_a_stream_that_stalls_ends_with_an_error_chunk(
    impatient: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(chunks=20)
    fresh_sim.add_faults({"kind": "slow_tokens", "ms": 3000})  # each token after the first
    events: list[Any] = []
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{impatient.base_url}/chat/completions",
        json={
            "model": GPT,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
            "provider": OPENAI_FIRST,
        },
        headers={"Authorization": f"Bearer {impatient.api_key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
    assert time.monotonic() - started < READ_TIMEOUT + 3
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == 408
    assert events[-1]["choices"][0]["finish_reason"] == "error"


def test_a_provider_that_is_down_is_a_clear_error(unreachable: RunningServer) -> None:
    started = time.monotonic()
    response = _post(unreachable)
    assert time.monotonic() - started < 5
    assert response.status_code in (502, 503)
    error = response.json()["error"]
    assert error["metadata"]["provider_name"] == "OpenAI"
    assert "sk-sim-test" not in response.text
