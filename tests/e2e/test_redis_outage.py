"""Redis unavailable: keep serving, say so loudly once, enforce limits per process, and go
back to shared state when Redis returns. The Redis here is a redis-server the test starts
and stops itself, on a port of its own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from switchyard.accounting.keys import hash_key
from tests.servers import RunningServer, free_port, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o-mini-2024-07-18"
RPM = 4
DOWN = "is unavailable"
BACK = "is back: shared state restored"


class RedisServer:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client.ping():
                    return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    yield server
    server.stop()


def _same_minute() -> None:
    """Keep a burst inside one fixed one-minute rate-limit window."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def _new_key(server: RunningServer) -> str:
    response = httpx.post(
        f"{server.base_url}/keys",
        json={"name": "redis-outage"},
        headers={"Authorization": f"Bearer {server.management_key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def _statuses(server: RunningServer, key: str, n: int) -> list[int]:
    return [
        httpx.post(
            f"{server.base_url}/chat/completions",
            json={"model": GPT, "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).status_code
        for _ in range(n)
    ]


def _wait_for_log(server: RunningServer, text: str, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged {count}x:\n{server.log()}"
        time.sleep(0.1)


def test_serving_through_redis_outages(
    sim: SimulatorHandle, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = (
        f'redis_url = "redis://127.0.0.1:{redis_server.port}/0"\n\n'
        f"[rate_limits]\nrequests_per_minute = {RPM}\n\n"
        "[local]\nenabled = false\n\n" + provider_config(sim.base_url, azure=False)
    )
    # Redis is not running yet: the server starts and serves all the same.
    server = start_server(tmp_path / "server", config)
    try:
        first = _new_key(server)
        _same_minute()
        # Limits still hold, counted in this process.
        assert _statuses(server, first, RPM + 2) == [200] * RPM + [429] * 2
        _wait_for_log(server, DOWN, 1, 5)

        # Redis arrives: within the retry interval, state is shared again.
        redis_server.start()
        _wait_for_log(server, BACK, 1, 15)  # the breaker poll finds it first
        second = _new_key(server)
        _same_minute()
        assert _statuses(server, second, 1) == [200]
        counters = list(redis_server.client.scan_iter(f"sy:rl:r:{hash_key(second)}:*"))
        assert len(counters) == 1, "the request was counted in Redis"
        assert redis_server.client.get(counters[0]) == b"1"

        # Redis goes away mid-run: serving continues, limits fall back to this process.
        redis_server.stop()
        _same_minute()
        assert _statuses(server, second, RPM + 1) == [200] * RPM + [429]
        _wait_for_log(server, DOWN, 2, 5)
        log = server.log()
        assert log.count(DOWN) == 2  # once per outage, not once per request
        assert "Traceback" not in log
    finally:
        server.stop()
