"""Routing end to end: two simulated providers, faults injected into one of them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, start_server
from tests.simulators.openai_sim import SimulatorHandle, run_in_thread

GPT = "openai/gpt-4o"


@dataclass
class TwoProviders:
    server: RunningServer
    openai: SimulatorHandle
    azure: SimulatorHandle

    def chat(self, **body: Any) -> httpx.Response:
        body.setdefault("model", GPT)
        body.setdefault("messages", [{"role": "user", "content": "Hello"}])
        headers = {"Authorization": f"Bearer {self.server.api_key}"}
        headers.update(body.pop("headers", {}))
        return httpx.post(
            f"{self.server.base_url}/chat/completions", json=body, headers=headers, timeout=30
        )


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoProviders]:
    openai_sim, azure_sim = run_in_thread(), run_in_thread()
    config = (
        "breaker_failures = 2\nbreaker_cooldown = 1.0\n\n"
        f'[providers.openai]\napi_key = "sk-sim-test"\nbase_url = "{openai_sim.base_url}/v1"\n\n'
        f'[providers.azure]\napi_key = "sk-sim-test"\nbase_url = "{azure_sim.base_url}"\n'
        'api_version = "2024-10-21"\n'
    )
    server = start_server(tmp_path_factory.mktemp("routing"), config)
    yield TwoProviders(server, openai_sim, azure_sim)
    server.stop()
    openai_sim.stop()
    azure_sim.stop()


@pytest.fixture
def fresh(two: TwoProviders) -> TwoProviders:
    two.openai.reset()
    two.azure.reset()
    return two


def test_equal_prices_share_the_load(fresh: TwoProviders) -> None:
    # Each health-sensitive test uses its own model: health is per endpoint, and shared.
    served = Counter(
        fresh.chat(
            model="openai/gpt-4o-mini-2024-07-18",
            messages=[{"role": "user", "content": f"question {i}"}],
        ).json()["provider"]
        for i in range(30)
    )
    # 1/price² weights are equal here: both serve (all 30 on one side: p = 2 * 2^-30).
    assert set(served) == {"OpenAI", "Azure"}


def test_a_failing_provider_is_skipped_then_used_again(fresh: TwoProviders) -> None:
    fresh.openai.add_faults({"kind": "status", "status": 500}, sticky=True)
    order = {"order": ["openai", "azure"]}
    for _ in range(3):  # two failures open openai's breaker; azure answers every time
        response = fresh.chat(provider=order)
        assert response.status_code == 200 and response.json()["provider"] == "Azure"
    seen = len(fresh.openai.requests())
    assert seen == 2
    for _ in range(5):  # breaker open: openai is not even tried, though it is first in order
        assert fresh.chat(provider=order).json()["provider"] == "Azure"
    assert len(fresh.openai.requests()) == seen
    # It recovers; after the cooldown one probe goes through, succeeds, and closes the breaker.
    fresh.openai.clear_faults()
    time.sleep(1.2)
    assert fresh.chat(provider=order).json()["provider"] == "OpenAI"
    assert fresh.chat(provider=order).json()["provider"] == "OpenAI"


def test_load_balancing_avoids_a_recently_failing_provider(fresh: TwoProviders) -> None:
    model = "openai/gpt-4o-2024-11-20"
    fresh.azure.add_faults({"kind": "status", "status": 503}, sticky=True)
    first = fresh.chat(model=model, provider={"order": ["azure", "openai"]})
    assert first.json()["provider"] == "OpenAI"  # azure failed, openai took over
    fresh.azure.clear_faults()
    # Without preferences, azure's failure in the last 30 s puts it last every time.
    providers = {
        fresh.chat(model=model, messages=[{"role": "user", "content": f"q{i}"}]).json()["provider"]
        for i in range(10)
    }
    assert providers == {"OpenAI"}


def test_allow_fallbacks_false_stays_in_the_order_list(fresh: TwoProviders) -> None:
    fresh.azure.add_faults({"kind": "status", "status": 502}, sticky=True)
    response = fresh.chat(provider={"order": ["azure"], "allow_fallbacks": False})
    assert response.status_code == 502
    assert fresh.openai.requests() == []


def test_nothing_can_serve_names_the_filters(fresh: TwoProviders) -> None:
    cheap = fresh.chat(provider={"max_price": {"prompt": 1, "completion": 1}})
    assert cheap.status_code == 404
    metadata = cheap.json()["error"]["metadata"]
    assert set(metadata["filters"]) == {"max_price"}
    assert sorted(metadata["filters"]["max_price"]) == [f"{GPT}@azure", f"{GPT}@openai"]
    strict = fresh.chat(top_k=5, provider={"require_parameters": True})
    assert strict.status_code == 404
    assert set(strict.json()["error"]["metadata"]["filters"]) == {"require_parameters"}
    only = fresh.chat(provider={"only": ["nowhere"]})
    assert only.status_code == 404 and "provider.only" in only.json()["error"]["message"]
    assert fresh.openai.requests() == [] and fresh.azure.requests() == []


def test_only_and_ignore(fresh: TwoProviders) -> None:
    assert fresh.chat(provider={"only": ["azure"]}).json()["provider"] == "Azure"
    assert fresh.chat(provider={"ignore": ["Azure"]}).json()["provider"] == "OpenAI"


def test_sessions_stick_to_their_endpoint(fresh: TwoProviders) -> None:
    for session in ("s-1", "s-2", "s-3", "s-4"):
        served = {
            fresh.chat(
                model="openai/gpt-4o-mini-2024-07-18",  # caches prompts; no faults injected
                session_id=session,
                messages=[{"role": "user", "content": f"turn {turn} of a long conversation"}],
            ).json()["provider"]
            for turn in range(6)
        }
        assert len(served) == 1, f"session {session} moved between providers: {served}"


def test_routing_metadata_on_request(fresh: TwoProviders) -> None:
    fresh.openai.add_faults({"kind": "status", "status": 503})
    response = fresh.chat(
        provider={"order": ["openai", "azure"]},
        headers={"X-OpenRouter-Metadata": "enabled"},
    )
    metadata = response.json()["openrouter_metadata"]
    assert metadata["requested"] == GPT and metadata["strategy"] == "direct"
    assert [(a["provider"], a["status"]) for a in metadata["attempts"]] == [
        ("openai", 503),
        ("azure", 200),
    ]
    selected = [e for e in metadata["endpoints"]["available"] if e["selected"]]
    assert selected == [{"model": GPT, "provider": "azure", "selected": True}]
    plain = fresh.chat()
    assert "openrouter_metadata" not in plain.json()
