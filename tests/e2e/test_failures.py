"""Upstream failures: invisible when another provider can serve, in-band after the first byte,
and a client that leaves cancels the upstream work."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.servers import RunningServer, start_server
from tests.simulators.openai_sim import DEFAULT_REPLY, SimulatorHandle

GPT = "openai/gpt-4o"
LOCAL = "local/smollm2-135m-instruct"
# SmolLM2's end tokens (<|endoftext|>, <|im_end|>): banning them makes generation run to
# max_tokens, so a test can rely on a generation that is still going when it disconnects.
NEVER_STOP = {"0": -100, "2": -100}
# Both simulated providers cost the same, so load balancing may pick either: fix the order.
OPENAI_FIRST = {"order": ["openai", "azure"]}


def headers(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def chat(server: RunningServer, **body: Any) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return httpx.post(
        f"{server.base_url}/chat/completions", json=body, headers=headers(server), timeout=30
    )


def sse_events(lines: Iterator[str]) -> list[Any]:
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_a_503_from_the_first_provider_is_invisible(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "status", "status": 503})
    response = chat(server, model=GPT, provider=OPENAI_FIRST)
    assert response.status_code == 200
    assert response.json()["provider"] == "Azure"
    assert response.json()["choices"][0]["message"]["content"] == DEFAULT_REPLY
    paths = [r["path"] for r in fresh_sim.requests()]
    assert paths == ["/v1/chat/completions", "/openai/deployments/gpt-4o/chat/completions"]


def test_stream_falls_back_before_the_first_byte(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "reset"})
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model=GPT,
            stream=True,
            messages=[{"role": "user", "content": "Hello"}],
            extra_body={"provider": OPENAI_FIRST},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[0].model_extra is not None and chunks[0].model_extra["provider"] == "Azure"


def test_when_every_provider_fails_the_client_gets_the_status(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "status", "status": 429, "retry_after": 7}, sticky=True)
    response = chat(server, model=GPT, provider=OPENAI_FIRST)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    error = response.json()["error"]
    assert error["metadata"]["provider_name"] == "Azure"
    assert error["metadata"]["upstream_status"] == 429
    assert "sk-sim-test" not in response.text


def test_mid_stream_failure_becomes_an_error_chunk(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        headers=headers(server),
        json={"model": GPT, "stream": True, "messages": [{"role": "user", "content": "Hello"}]},
    ) as response:
        assert response.status_code == 200
        events = sse_events(response.iter_lines())
    assert "[DONE]" not in events
    last = events[-1]
    assert last["error"]["code"] == 502 and last["choices"][0]["finish_reason"] == "error"
    # Every event shares the generation's id: the error belongs to the stream it ends.
    assert {e["id"] for e in events} == {last["id"]}
    # No silent switch to the other provider after the first byte.
    assert len(fresh_sim.requests()) == 1


def test_keepalive_comments_while_waiting_for_the_first_token(server: RunningServer) -> None:
    # A long prompt keeps the local model busy before its first token; the server's
    # keep-alive interval is 0.2 s in these tests.
    prompt = "The quick brown fox jumps over the lazy dog. " * 30
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        headers=headers(server),
        timeout=60,
        json={
            "model": LOCAL,
            "stream": True,
            "max_tokens": 2,
            "messages": [{"role": "user", "content": prompt}],
        },
    ) as response:
        lines = list(response.iter_lines())
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert any(line.startswith(": ") for line in lines[:first_data]), (
        "SSE keep-alive comments are sent while the model has not produced a token"
    )
    assert sse_events(iter(lines))[-1] == "[DONE]"


def test_client_disconnect_cancels_the_upstream(
    server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(chunks=200)
    fresh_sim.add_faults({"kind": "slow_tokens", "ms": 100})
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        headers=headers(server),
        json={"model": GPT, "stream": True, "messages": [{"role": "user", "content": "Hello"}]},
    ) as response:
        for line in response.iter_lines():
            if '"content":"Hello' in line:
                break  # leave after the first token
    deadline = time.monotonic() + 10
    while fresh_sim.stats()["cancelled_streams"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh_sim.stats()["cancelled_streams"] == 1
    assert fresh_sim.stats()["streams_completed"] == 0


def local_stats(server: RunningServer) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(f"http://127.0.0.1:{server.port}/health").json()["providers"][
        "local"
    ]
    return stats


def test_client_disconnect_stops_local_generation(server: RunningServer) -> None:
    before = local_stats(server)["cancelled"]
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        headers=headers(server),
        json={
            "model": LOCAL,
            "stream": True,
            "max_tokens": 2000,
            "logit_bias": NEVER_STOP,
            "messages": [{"role": "user", "content": "Tell a story."}],
        },
    ) as r:
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data: ")
            if seen >= 3:
                break
    deadline = time.monotonic() + 20
    while local_stats(server)["busy"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = local_stats(server)
    assert stats["busy"] == 0
    assert stats["cancelled"] == before + 1


@pytest.fixture(scope="module")
def tiny_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("queue"), "[local]\nqueue_size = 1\n")
    yield running
    running.stop()


async def test_a_full_local_queue_answers_503_with_retry_after(tiny_queue: RunningServer) -> None:
    long = {
        "model": LOCAL,
        "stream": True,
        "max_tokens": 2000,
        "logit_bias": NEVER_STOP,
        "messages": [{"role": "user", "content": "Tell a story."}],
    }
    url = f"{tiny_queue.base_url}/chat/completions"
    gate = asyncio.Event()

    async def hold(client: httpx.AsyncClient) -> int:
        async with client.stream("POST", url, json=long) as response:
            await gate.wait()
            return response.status_code

    async with httpx.AsyncClient(headers=headers(tiny_queue), timeout=30) as client:
        running = asyncio.ensure_future(hold(client))  # takes the only worker
        await wait_for(tiny_queue, busy=1, waiting=0)
        waiting = asyncio.ensure_future(hold(client))  # waits in the queue
        await wait_for(tiny_queue, busy=1, waiting=1)
        refused = await client.post(url, json={**long, "stream": False})
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert "busy" in refused.json()["error"]["message"]
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await wait_for(tiny_queue, busy=1, waiting=0)  # the waiting request got the worker
        gate.set()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    await wait_for(tiny_queue, busy=0, waiting=0)
    assert local_stats(tiny_queue)["cancelled"] == 2


async def wait_for(server: RunningServer, **expected: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = local_stats(server)
        if all(stats[k] == v for k, v in expected.items()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"local stats never reached {expected}: {local_stats(server)}")
