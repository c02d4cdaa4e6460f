"""The official openrouter SDK against a running Switchyard: chat, streaming, catalog."""

from __future__ import annotations

import time

import httpx
import pytest
from openrouter import OpenRouter

from tests.servers import RunningServer
from tests.simulators.openai_sim import SimulatorHandle

LOCAL = "local/smollm2-135m-instruct"
MINI = "openai/gpt-4o-mini-2024-07-18"


def sdk(server: RunningServer) -> OpenRouter:
    return OpenRouter(api_key=server.api_key, server_url=server.base_url)


def test_chat_send(server: RunningServer) -> None:
    with sdk(server) as client:
        result = client.chat.send(
            model=LOCAL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5
        )
    assert result.model == LOCAL
    assert result.id.startswith("gen-")
    assert result.choices[0].message.role == "assistant"
    assert result.usage is not None and result.usage.completion_tokens <= 5
    assert result.usage.cost == 0


def test_chat_send_streaming(server: RunningServer) -> None:
    with sdk(server) as client:
        events = list(
            client.chat.send(
                model=LOCAL,
                messages=[{"role": "user", "content": "Hi"}],
                max_tokens=5,
                stream=True,
            )
        )
    chunks = [e for e in events if e.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks)
    assert events[-1].usage is not None and events[-1].choices == []


def test_models_list_and_endpoints(server: RunningServer) -> None:
    with sdk(server) as client:
        listing = client.models.list()
        ids = [m.id for m in listing.result.data]
        assert LOCAL in ids and "openai/gpt-4o" in ids
        gpt4o = next(m for m in listing.result.data if m.id == "openai/gpt-4o")
        assert gpt4o.context_length == 128000
        assert gpt4o.pricing.prompt == "0.0000025" and gpt4o.pricing.completion == "0.00001"
        assert gpt4o.architecture.input_modalities == ["text", "image", "file"]
        endpoints = client.endpoints.list(author="openai", slug="gpt-4o")
        providers = {e.provider_name for e in endpoints.data.endpoints}
        assert providers == {"OpenAI", "Azure"}
        names = {p.slug for p in client.providers.list().data}
        assert {"openai", "azure", "local"} <= names


def test_endpoints_report_measured_health(server: RunningServer, sim: SimulatorHandle) -> None:
    """Uptime, latency and throughput are null until an endpoint serves, then measured."""
    with sdk(server) as client:
        before = client.endpoints.list(author="openai", slug="gpt-4-turbo").data.endpoints
        assert all(e.uptime_last_30m is None and e.latency_last_30m is None for e in before)
        sim.reset()
        client.chat.send(
            model="openai/gpt-4-turbo",
            messages=[{"role": "user", "content": "Hi"}],
            provider={"only": ["openai"]},
        )
        listed = client.endpoints.list(author="openai", slug="gpt-4-turbo").data.endpoints
        after = {e.tag: e for e in listed}
    served = after["openai"]
    assert served.uptime_last_5m == served.uptime_last_30m == served.uptime_last_1d == 100
    assert served.latency_last_30m is not None and served.latency_last_30m.p50 > 0
    assert served.throughput_last_30m is not None and served.throughput_last_30m.p50 > 0
    assert after["azure"].uptime_last_30m is None


def test_models_count_and_list_for_user(server: RunningServer) -> None:
    with sdk(server) as client:
        listed = [m.id for m in client.models.list().result.data]
        assert client.models.count().data.count == len(listed)
        embedding_models = client.models.list(output_modalities="embeddings").result.data
        counted = client.models.count(output_modalities="embeddings").data.count
        assert counted == len(embedding_models) >= 1
        assert client.models.count(output_modalities="all").data.count > len(listed)
        mine = client.models.list_for_user(security={"bearer": server.api_key})
        assert mine is not None
        assert [m.id for m in mine.result.data] == listed


def test_models_pages_keep_the_filters(server: RunningServer) -> None:
    url = f"{server.base_url}/models"
    whole = httpx.get(url, params={"output_modalities": "all"}).json()
    assert whole["links"]["next"] is None  # no offset or limit: the whole list
    ids = [m["id"] for m in whole["data"]]
    first = httpx.get(url, params={"output_modalities": "all", "limit": 2}).json()
    assert [m["id"] for m in first["data"]] == ids[:2]
    assert first["total_count"] == len(ids)
    following = httpx.get(f"http://127.0.0.1:{server.port}{first['links']['next']}").json()
    assert [m["id"] for m in following["data"]] == ids[2:4]
    last = httpx.get(url, params={"output_modalities": "all", "offset": len(ids) - 1}).json()
    assert [m["id"] for m in last["data"]] == ids[-1:] and last["links"]["next"] is None


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/models", {"limit": "0"}, "limit"),
        ("/models", {"limit": "1001"}, "limit"),
        ("/models", {"offset": "-1"}, "offset"),
        ("/models", {"offset": "x"}, "offset"),
        ("/models", {"output_modalities": "txt"}, "output_modalities"),
        ("/models/count", {"output_modalities": "text,pictures"}, "output_modalities"),
    ],
)
def test_bad_model_list_parameters_are_400s_naming_them(
    server: RunningServer, path: str, params: dict[str, str], field: str
) -> None:
    response = httpx.get(f"{server.base_url}{path}", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["metadata"]["field"] == field
    assert field in error["message"]


def test_models_for_user_need_a_key(server: RunningServer) -> None:
    assert httpx.get(f"{server.base_url}/models/user").status_code == 401


def _best(server: RunningServer, model: str, field: str) -> float | None:
    """The best p50 of ``field`` over the model's endpoints, from the endpoints API."""
    author, slug = model.split("/", 1)
    endpoints = httpx.get(f"{server.base_url}/models/{author}/{slug}/endpoints").json()
    values = [e[field]["p50"] for e in endpoints["data"]["endpoints"] if e[field] is not None]
    if not values:
        return None
    return max(values) if field == "throughput_last_30m" else min(values)


def test_models_sort_by_measured_speed_and_use(server: RunningServer, sim: SimulatorHandle) -> None:
    sim.reset()
    with sdk(server) as client:
        for model in (LOCAL, MINI, MINI):
            client.chat.send(
                model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=5
            )
    for sort, field in (
        ("throughput-high-to-low", "throughput_last_30m"),
        ("latency-low-to-high", "latency_last_30m"),
    ):
        listed = httpx.get(f"{server.base_url}/models", params={"sort": sort}).json()["data"]
        values = [_best(server, m["id"], field) for m in listed]
        measured = [v for v in values if v is not None]
        assert len(measured) >= 2
        assert values[: len(measured)] == measured  # measured models first
        assert measured == sorted(measured, reverse=field == "throughput_last_30m")

    # Use: this week's recorded tokens, most first (usage is written in the background).
    deadline = time.monotonic() + 10
    while True:
        listed = httpx.get(f"{server.base_url}/models", params={"sort": "top-weekly"}).json()
        first_two = {m["id"] for m in listed["data"][:2]}
        if {LOCAL, MINI} <= first_two or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {LOCAL, MINI} <= first_two
