"""A flapping upstream: while its breaker is open, requests route around it without trying
it; probes that fail keep it open for longer; one that succeeds closes it; and failures
that alternate with successes do not keep a working endpoint shut out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o"
OPENAI = "/v1/chat/completions"
AZURE = "/openai/deployments/gpt-4o/chat/completions"
COOLDOWN = 1.0
FAIL = {"kind": "status", "status": 503}
OK = {"kind": "latency", "ms": 0}  # a fault slot that changes nothing


@pytest.fixture(scope="module")
def breaker_server(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        f"breaker_failures = 2\nbreaker_cooldown = {COOLDOWN}\n\n[local]\nenabled = false\n\n"
        + provider_config(sim.base_url)
    )
    running = start_server(tmp_path_factory.mktemp("flapping"), config)
    yield running
    running.stop()


class Probe:
    def __init__(self, server: RunningServer, sim: SimulatorHandle) -> None:
        self.server = server
        self.sim = sim
        self.seen = len(sim.requests())

    def ask(self) -> tuple[str, list[str]]:
        """Who served, and which upstream paths this request tried, in order."""
        response = httpx.post(
            f"{self.server.base_url}/chat/completions",
            json={
                "model": GPT,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "Hello"}],
                "provider": {"order": ["openai", "azure"]},
            },
            headers={"Authorization": f"Bearer {self.server.api_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        requests: list[dict[str, Any]] = self.sim.requests()
        tried = [r["path"] for r in requests[self.seen :]]
        self.seen = len(requests)
        provider: str = response.json()["provider"]
        return provider, tried


def test_a_flapping_endpoint_is_routed_around_then_readmitted(
    breaker_server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    probe = Probe(breaker_server, fresh_sim)
    # Two failures in a row open the breaker (each request still served, by Azure).
    fresh_sim.add_faults(FAIL, OK, FAIL, OK)
    assert probe.ask() == ("Azure", [OPENAI, AZURE])
    assert probe.ask() == ("Azure", [OPENAI, AZURE])
    opened = time.monotonic()
    # Open: OpenAI is not even tried.
    assert probe.ask() == ("Azure", [AZURE])
    assert probe.ask() == ("Azure", [AZURE])

    # After the cooldown one probe goes through; it fails, and the breaker stays open
    # for twice as long.
    time.sleep(max(0.0, opened + COOLDOWN + 0.1 - time.monotonic()))
    fresh_sim.add_faults(FAIL, OK)
    assert probe.ask() == ("Azure", [OPENAI, AZURE])
    reopened = time.monotonic()
    time.sleep(COOLDOWN + 0.1)
    assert probe.ask() == ("Azure", [AZURE])  # inside the doubled cooldown

    # The next probe succeeds: the breaker closes and OpenAI serves again.
    time.sleep(max(0.0, reopened + 2 * COOLDOWN + 0.1 - time.monotonic()))
    assert probe.ask() == ("OpenAI", [OPENAI])
    assert probe.ask() == ("OpenAI", [OPENAI])

    # Failures alternating with successes: never two in a row, so OpenAI keeps its traffic.
    for _ in range(4):
        fresh_sim.add_faults(FAIL, OK)
        assert probe.ask() == ("Azure", [OPENAI, AZURE])
        assert probe.ask() == ("OpenAI", [OPENAI])
