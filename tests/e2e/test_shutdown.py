"""SIGTERM: stop accepting, let in-flight streams finish within the grace period, end the
ones still running with an in-band error chunk, settle everything, exit 0."""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o"
GRACE = 3.0


def _config(sim: SimulatorHandle) -> str:
    return (
        f"shutdown_grace_seconds = {GRACE}\nkeepalive_interval = 0.2\n\n"
        "[local]\nenabled = false\n\n" + provider_config(sim.base_url, azure=False)
    )


def _stream(server: RunningServer, max_tokens: int, started: Future[str]) -> list[Any]:
    """Stream a completion; resolve ``started`` with its id once content flows."""
    events: list[Any] = []
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={
            "model": GPT,
            "stream": True,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "Hello"}],
        },
        timeout=60,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            event = data if data == "[DONE]" else json.loads(data)
            events.append(event)
            if len(events) == 3 and not started.done():
                started.set_result(event["id"])
    return events


def _refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


def _generation(server: RunningServer, generation_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.base_url}/generation",
        params={"id": generation_id},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_sigterm_drains_streams_then_exits_cleanly(
    fresh_sim: SimulatorHandle, tmp_path: Path
) -> None:
    fresh_sim.configure(chunks=400)
    fresh_sim.add_faults({"kind": "slow_tokens", "ms": 100}, sticky=True)
    data_dir = tmp_path / "server"
    server = start_server(data_dir, _config(fresh_sim))
    restarted: RunningServer | None = None
    try:
        short_started: Future[str] = Future()
        long_started: Future[str] = Future()
        with ThreadPoolExecutor(2) as pool:
            # ~1.5 s of tokens: finishes inside the grace period.
            short = pool.submit(_stream, server, 15, short_started)
            # ~40 s of tokens: still running when the grace period ends.
            long = pool.submit(_stream, server, 400, long_started)
            short_id = short_started.result(20)
            long_id = long_started.result(20)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            deadline = signalled + 2
            while not _refuses_connections(server.port):
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            assert not long.done(), "the in-flight stream must outlive the listening socket"

            short_events = short.result(30)
            long_events = long.result(30)
            ended = time.monotonic() - signalled
        assert server.process.wait(15) == 0
        exited = time.monotonic() - signalled

        assert short_events[-1] == "[DONE]"
        content = "".join(
            e["choices"][0]["delta"].get("content") or "" for e in short_events[:-1] if e["choices"]
        )
        assert len(content.split()) >= 10  # it ran to its end, not cut

        # The long stream was ended in-band when the grace period ran out.
        assert "[DONE]" not in long_events
        last = long_events[-1]
        assert last["error"]["code"] == 503
        assert "shutting down" in last["error"]["message"]
        assert last["choices"][0]["finish_reason"] == "error"
        assert {e["id"] for e in long_events} == {long_id}
        assert GRACE - 0.5 <= ended <= GRACE + 2.5
        assert exited < GRACE + 5

        # Both generations were settled and reach the database across the restart.
        restarted = start_server(data_dir, _config(fresh_sim), keep_keys=server)
        short_record = _generation(restarted, short_id)
        long_record = _generation(restarted, long_id)
        assert short_record["tokens_completion"] == 15
        assert short_record["total_cost"] > 0
        assert long_record["tokens_completion"] >= 15  # what was generated in ~3 s ...
        assert long_record["total_cost"] > 0  # ... is charged
        assert long_record["cancelled"] is True
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_server_exits_zero(sig: signal.Signals, tmp_path: Path) -> None:
    server = start_server(tmp_path / "idle", "[local]\nenabled = false\n")
    try:
        server.process.send_signal(sig)
        assert server.process.wait(15) == 0
    finally:
        server.stop()
