"""``switchyard serve --workers N``: several processes on one port, safe only with Redis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import ROOT, RunningServer, free_port, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

REDIS_URL = "redis://127.0.0.1:6379/0"
GPT = "openai/gpt-4o-mini-2024-07-18"
RPM = 6
ACCESS = re.compile(r"[\d.:]+ - \"POST /api/v1/chat/completions HTTP/1.1\" (\d+)")


def access_lines(log: str) -> list[tuple[str, str]]:
    """(worker pid, status) of each chat request in a JSON log."""
    found = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # banners printed before logging starts
        if not isinstance(record, dict) or record.get("logger") != "uvicorn.access":
            continue
        match = ACCESS.search(record.get("message", ""))
        if match:
            found.append((str(record["pid"]), match.group(1)))
    return found


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    (tmp_path / "switchyard.toml").write_text("[local]\nenabled = false\n")
    command = [sys.executable, "-m", "switchyard", "serve", "--data-dir", str(tmp_path)]
    done = subprocess.run(
        [*command, "--port", str(free_port()), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 2
    assert "--workers 2 needs redis_url" in done.stderr
    assert not (tmp_path / "switchyard.db").exists()  # refused before touching anything


@pytest.fixture(scope="module")
def two_workers(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    prefix = f"sytest-{uuid.uuid4().hex[:10]}"
    config = (
        f'redis_url = "{REDIS_URL}"\nredis_prefix = "{prefix}"\n\n'
        f"[rate_limits]\nrequests_per_minute = {RPM}\n\n"
        "[local]\nenabled = false\n\n" + provider_config(sim.base_url, azure=False)
    )
    running = start_server(
        tmp_path_factory.mktemp("workers"),
        config,
        args=["--workers", "2", "--access-log", "--log-format", "json"],
    )
    # The server answers as soon as one worker is up; the test needs both.
    deadline = time.monotonic() + 60
    while running.log().count("Application startup complete") < 2:
        assert time.monotonic() < deadline, running.log()
        time.sleep(0.1)
    yield running
    running.stop()
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter(f"{prefix}:*"))
    if stale:
        client.delete(*stale)


def test_two_workers_serve_and_share_a_rate_limit(
    two_workers: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    if time.time() % 60 > 45:  # keep the burst inside one one-minute window
        time.sleep(61 - time.time() % 60)
    fresh_sim.add_faults({"kind": "latency", "ms": 300}, sticky=True)  # overlap the requests

    async def burst(count: int) -> list[httpx.Response]:
        # No keep-alive: every request is a new connection, for either worker to accept.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{two_workers.base_url}/chat/completions",
                        headers={"Authorization": f"Bearer {two_workers.api_key}"},
                        json={
                            "model": GPT,
                            "max_tokens": 5,
                            "messages": [{"role": "user", "content": "Hello"}],
                        },
                    )
                    for _ in range(count)
                )
            )

    def answered() -> list[tuple[str, str]]:
        deadline = time.monotonic() + 5
        while True:
            lines = access_lines(two_workers.log())
            if len(lines) >= sent or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    responses = asyncio.run(burst(4 * RPM))
    sent = len(responses)
    statuses = sorted(r.status_code for r in responses)
    # One limit for the key, not one per worker.
    assert statuses == [200] * RPM + [429] * (3 * RPM)

    # The kernel decides which worker accepts each connection; a fast worker can take a
    # whole burst. Until both have answered, keep asking: every further request must be
    # refused, whichever worker takes it, since the first burst used the shared limit.
    lines = answered()
    for _ in range(10):
        if len({pid for pid, _status in lines}) == 2:
            break
        more = asyncio.run(burst(RPM))
        sent += len(more)
        assert {r.status_code for r in more} == {429}
        lines = answered()
    workers = {pid for pid, _status in lines}
    assert len(workers) == 2, f"both workers should have answered: {lines}"
    assert int(two_workers.process.pid) not in {int(p) for p in workers}


def chat_requests_in_metrics(text: str) -> Counter[str]:
    """POST /api/v1/chat/completions by status, from one scrape."""
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "switchyard_http_requests_total"
                and labels.get("route") == "/api/v1/chat/completions"
                and labels.get("method") == "POST"
            ):
                found[labels["status"]] += int(sample.value)
    return found


def test_every_scrape_adds_up_all_workers(two_workers: RunningServer) -> None:
    # The rate-limit test above had both workers answer chat requests (it asserts so).
    served = Counter(status for _pid, status in access_lines(two_workers.log()))
    assert len({pid for pid, _status in access_lines(two_workers.log())}) == 2
    metrics_url = f"http://127.0.0.1:{two_workers.port}/metrics"
    # Each scrape is a new connection, for either worker to accept; each must count both.
    deadline = time.monotonic() + 10
    scrapes = 0
    while scrapes < 8:
        counted = chat_requests_in_metrics(httpx.get(metrics_url, timeout=10).text)
        if counted != served:  # the last requests' metrics may land just after their reply
            assert time.monotonic() < deadline, f"metrics {counted} != served {served}"
            time.sleep(0.1)
            continue
        scrapes += 1


def test_sigterm_stops_every_worker_and_exits_zero(two_workers: RunningServer) -> None:
    worker = next(pid for pid, _status in access_lines(two_workers.log()))
    (metrics_dir,) = {
        found.parent
        for found in Path(tempfile.gettempdir()).glob(f"switchyard-metrics-*/*_{worker}.db")
    }
    two_workers.process.send_signal(signal.SIGTERM)
    assert two_workers.process.wait(30) == 0
    assert not metrics_dir.exists()  # the workers' metric files go with the server
    log = two_workers.log()
    assert log.count("shutting down: in-flight requests have") == 2  # each worker drained
