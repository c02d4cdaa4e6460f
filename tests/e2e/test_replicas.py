"""Three replicas sharing the real PostgreSQL and Redis on this machine.

Each replica is a separate server process with its own data directory (its journal) and
port, as behind a load balancer. Under concurrent load spread over all three:
- a key's credit limit holds;
- a rate limit holds globally;
- an endpoint one replica finds down is avoided by the others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import redis

from tests.e2e.test_accounting import POSTGRES_URL, psql
from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import Fault, SimulatorHandle

REDIS_URL = "redis://127.0.0.1:6379/0"
GPT = "openai/gpt-4o-mini-2024-07-18"
RATE_LIMITED_MODEL = "openai/gpt-4-turbo"
RPM = 6


@dataclass
class Cluster:
    replicas: list[RunningServer]
    manager: str
    sim: SimulatorHandle

    def url(self, i: int, path: str) -> str:
        return f"{self.replicas[i % len(self.replicas)].base_url}{path}"


def _config(schema: str, prefix: str, openai_base: str, sim: SimulatorHandle) -> str:
    providers = provider_config(sim.base_url, openai=False) + (
        f'\n[providers.openai]\napi_key = "sk-sim-test"\nbase_url = "{openai_base}"\n'
    )
    return (
        f'database_url = "{POSTGRES_URL}?options=-csearch_path%3D{schema}"\n'
        f'redis_url = "{REDIS_URL}"\nredis_prefix = "{prefix}"\n'
        "breaker_failures = 2\nbreaker_cooldown = 60\n\n"
        f'[rate_limits.models."{RATE_LIMITED_MODEL}"]\nrequests_per_minute = {RPM}\n\n'
        "[local]\nenabled = false\n\n" + providers
    )


@pytest.fixture(scope="module")
def cluster(sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    schema = f"replicas_{uuid.uuid4().hex[:10]}"
    prefix = f"sytest-{uuid.uuid4().hex[:10]}"
    psql(f"CREATE SCHEMA {schema}")
    root = tmp_path_factory.mktemp("replicas")
    # Replica 0 reaches OpenAI at a closed port: it will find that endpoint down.
    dead = "http://127.0.0.1:1/v1"
    first = start_server(root / "r0", _config(schema, prefix, dead, sim))
    others = [
        start_server(root / f"r{i}", _config(schema, prefix, sim.openai_base_url, sim), None)
        for i in (1, 2)
    ]
    try:
        yield Cluster([first, *others], first.management_key, sim)
    finally:
        for replica in (first, *others):
            replica.stop()
        psql(f"DROP SCHEMA {schema} CASCADE")
        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(f"{prefix}:*"))
        if stale:
            client.delete(*stale)


def _new_key(cluster: Cluster, limit: str | None = None) -> str:
    body: dict[str, object] = {"name": "replica-test"}
    if limit is not None:
        body["limit"] = float(limit)
    response = httpx.post(
        cluster.url(0, "/keys"),
        json=body,
        headers={"Authorization": f"Bearer {cluster.manager}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def _chat(
    client: httpx.AsyncClient, cluster: Cluster, i: int, key: str, **body: object
) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": "Hello"}], **body}
    return await client.post(
        cluster.url(i, "/chat/completions"),
        json=payload,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_a_credit_limit_holds_across_replicas(cluster: Cluster) -> None:
    # Each request reserves its worst case: the prompt plus max_tokens=1000 on gpt-4o-mini
    # (at most 1000 * $0.0000006 + a few prompt tokens). The limit covers ten of those.
    limit = Decimal("0.0061")
    key = _new_key(cluster, str(limit))
    cluster.sim.add_faults(Fault(kind="latency", ms=4000), sticky=True)  # all in flight

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(
                *(_chat(client, cluster, i, key, model=GPT, max_tokens=1000) for i in range(30))
            )

    try:
        responses = asyncio.run(run())
    finally:
        cluster.sim.clear_faults()
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 402]
    assert len(served) + len(refused) == 30, {r.status_code for r in responses}
    # Ten worst cases fit; shared reservations stop the rest on every replica at once.
    assert 1 <= len(served) <= 10 < len(refused)
    spent = sum(Decimal(str(r.json()["usage"]["cost"])) for r in served)
    assert spent <= limit


def test_a_rate_limit_holds_globally(cluster: Cluster) -> None:
    if time.time() % 60 > 45:  # keep the burst inside one one-minute window
        time.sleep(61 - time.time() % 60)
    key = _new_key(cluster)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(
                *(
                    _chat(client, cluster, i, key, model=RATE_LIMITED_MODEL, max_tokens=5)
                    for i in range(3 * RPM)
                )
            )

    responses = asyncio.run(run())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * RPM + [429] * (2 * RPM)
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["X-RateLimit-Limit"] == str(RPM)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1
    assert RATE_LIMITED_MODEL in refused.json()["error"]["message"]


def test_an_endpoint_one_replica_finds_down_is_avoided_by_the_others(
    cluster: Cluster,
) -> None:
    key = _new_key(cluster)
    openai_first = {"order": ["openai", "azure"], "allow_fallbacks": True}

    async def ask(i: int) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await _chat(
                client, cluster, i, key, model="openai/gpt-4o", max_tokens=5, provider=openai_first
            )

    # Before: replica 1 reaches OpenAI fine.
    before = asyncio.run(ask(1))
    assert before.status_code == 200 and before.json()["provider"] == "OpenAI"
    # Replica 0 cannot reach OpenAI; two failures open its breaker (it falls back to Azure).
    for _ in range(2):
        response = asyncio.run(ask(0))
        assert response.status_code == 200 and response.json()["provider"] == "Azure"
    time.sleep(1.0)  # replicas poll the shared verdicts every 0.5 s
    openai_calls = len([r for r in cluster.sim.requests() if r["path"] == "/v1/chat/completions"])
    for i in (1, 2):
        response = asyncio.run(ask(i))
        assert response.status_code == 200
        assert response.json()["provider"] == "Azure"
    # Replicas 1 and 2 did not even try OpenAI, which was working for them.
    after = len([r for r in cluster.sim.requests() if r["path"] == "/v1/chat/completions"])
    assert after == openai_calls
