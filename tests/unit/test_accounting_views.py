"""Accounting views: activity over the last 30 complete UTC days, generation records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from switchyard.accounting.keys import KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.records import GenerationRecord
from switchyard.accounting.views import (
    activity,
    current_key_data,
    generation_data,
    key_data,
    load_generation,
)
from switchyard.accounting.writer import write_batch
from switchyard.storage.sqlite import SQLiteDatabase
from switchyard.wire.accounts import ProviderResponseOut

D = Decimal
GPT4O = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini-2024-07-18"
OPENAI_EP = "openai/gpt-4o@openai"
AZURE_EP = "openai/gpt-4o@azure"
KEY_A = "a" * 64
KEY_B = "b" * 64


def days_ago(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=n)).isoformat()


async def add_activity(
    db: SQLiteDatabase,
    day: str,
    *,
    key_hash: str = KEY_A,
    account_id: str = "default",
    model: str = GPT4O,
    endpoint: str = OPENAI_EP,
    provider: str = "openai",
    requests: int = 1,
    prompt: int = 10,
    completion: int = 5,
    reasoning: int = 0,
    cached: int = 0,
    usage: int = 1000,
) -> None:
    await db.execute(
        "INSERT INTO activity_daily (day, account_id, key_hash, model, endpoint, provider_name,"
        " requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, usage)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        day,
        account_id,
        key_hash,
        model,
        endpoint,
        provider,
        requests,
        prompt,
        completion,
        reasoning,
        cached,
        usage,
    )


# --- activity --------------------------------------------------------------------------------


async def test_activity_has_only_complete_days_of_the_last_30(db: SQLiteDatabase) -> None:
    for n in (0, 1, 31):
        await add_activity(db, days_ago(n), usage=1000 + n)
    items = await activity(db, "default", None, None)
    assert [(i.date, i.usage) for i in items] == [(days_ago(1), D("1.001E-9"))]


async def test_activity_window_edges(db: SQLiteDatabase) -> None:
    for n in (0, 1, 29, 30, 31, 32):
        await add_activity(db, days_ago(n))
    items = await activity(db, "default", None, None)
    assert [i.date for i in items] == [days_ago(1), days_ago(29), days_ago(30)]


async def test_activity_groups_by_day_model_and_endpoint(db: SQLiteDatabase) -> None:
    yesterday, before = days_ago(1), days_ago(2)
    # Two keys, same day, model and endpoint: one item.
    await add_activity(
        db,
        yesterday,
        key_hash=KEY_A,
        requests=2,
        prompt=10,
        completion=4,
        reasoning=1,
        cached=3,
        usage=2_500_000,
    )
    await add_activity(
        db,
        yesterday,
        key_hash=KEY_B,
        requests=1,
        prompt=5,
        completion=6,
        reasoning=2,
        cached=0,
        usage=500_000,
    )
    await add_activity(db, yesterday, endpoint=AZURE_EP, provider="azure", usage=7)
    await add_activity(db, yesterday, model=MINI, endpoint=f"{MINI}@openai", usage=11)
    await add_activity(db, before, usage=13)
    items = await activity(db, "default", None, None)
    assert [(i.date, i.model, i.endpoint_id) for i in items] == [
        (yesterday, GPT4O, AZURE_EP),
        (yesterday, GPT4O, OPENAI_EP),
        (yesterday, MINI, f"{MINI}@openai"),
        (before, GPT4O, OPENAI_EP),
    ]
    merged = items[1]
    assert merged.provider_name == "openai"
    assert merged.model_permaslug == GPT4O
    assert (merged.requests, merged.prompt_tokens, merged.completion_tokens) == (3, 15, 10)
    assert (merged.reasoning_tokens, merged.cached_tokens) == (3, 3)
    assert merged.usage == D("0.000003")
    assert merged.byok_usage_inference == 0
    assert merged.workspace_id == "default"
    assert items[0].provider_name == "azure"
    assert [i.usage for i in items[2:]] == [D("1.1E-11"), D("1.3E-11")]


async def test_activity_filters_by_key(db: SQLiteDatabase) -> None:
    yesterday = days_ago(1)
    await add_activity(db, yesterday, key_hash=KEY_A, requests=2, usage=100)
    await add_activity(db, yesterday, key_hash=KEY_B, requests=5, usage=1)
    await add_activity(db, days_ago(3), key_hash=KEY_B, requests=1, usage=1)
    (only_a,) = await activity(db, "default", KEY_A, None)
    assert (only_a.requests, only_a.usage) == (2, D("1E-10"))
    assert [i.requests for i in await activity(db, "default", KEY_B, None)] == [5, 1]
    assert await activity(db, "default", "c" * 64, None) == []


async def test_activity_filters_by_date(db: SQLiteDatabase) -> None:
    for n in (1, 2, 3):
        await add_activity(db, days_ago(n), requests=n)
    (item,) = await activity(db, "default", None, days_ago(2))
    assert (item.date, item.requests) == (days_ago(2), 2)
    assert await activity(db, "default", None, days_ago(0)) == []  # today is not complete
    assert await activity(db, "default", None, days_ago(31)) == []
    assert await activity(db, "default", KEY_B, days_ago(2)) == []


async def test_activity_is_per_account(db: SQLiteDatabase) -> None:
    await add_activity(db, days_ago(1), account_id="default", requests=1)
    await add_activity(db, days_ago(1), account_id="acme", requests=4)
    (item,) = await activity(db, "acme", None, None)
    assert (item.requests, item.workspace_id) == (4, "acme")
    assert await activity(db, "nobody", None, None) == []


async def test_activity_of_written_generations(db: SQLiteDatabase) -> None:
    keys = KeyStore(db)
    await keys.ensure_account()
    _, key = await keys.create_key(name="k")
    created = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(timespec="milliseconds")
    await write_batch(
        db, [generation(key.hash, "gen-1", created), generation(key.hash, "gen-2", created)]
    )
    (item,) = await activity(db, "default", key.hash, None)
    assert (item.date, item.requests, item.usage) == (created[:10], 2, D("0.0025"))
    assert (item.prompt_tokens, item.cached_tokens, item.reasoning_tokens) == (2000, 800, 100)


# --- generations ------------------------------------------------------------------------------


def generation(
    key_hash: str = KEY_A,
    generation_id: str = "gen-1",
    created: str = "2024-06-10T12:00:00.123+00:00",
) -> GenerationRecord:
    return GenerationRecord(
        id=generation_id,
        account_id="default",
        key_hash=key_hash,
        created_at=created,
        day=created[:10],
        model=GPT4O,
        endpoint=OPENAI_EP,
        provider_name="openai",
        streamed=True,
        cancelled=False,
        finish_reason="stop",
        native_finish_reason="end_turn",
        latency_ms=250.5,
        generation_time_ms=1234.25,
        tokens_prompt=1000,
        tokens_completion=200,
        native_tokens_cached=400,
        native_tokens_reasoning=50,
        num_media_prompt=2,
        total_cost=1_250_000_000,
        cache_discount=500_000_000,
        http_referer="https://example.com",
        app_title="Example",
        user_id="user-7",
        session_id="session-9",
        provider_responses=[
            {
                "endpoint": AZURE_EP,
                "provider_name": "azure",
                "status": 503,
                "latency": 12.5,
                "error": "Service Unavailable",
            },
            {"endpoint": OPENAI_EP, "provider_name": "openai", "status": 200, "latency": 80.25},
        ],
    )


def test_generation_data_maps_the_record() -> None:
    data = generation_data(generation())
    assert (data.id, data.created_at, data.model) == (
        "gen-1",
        "2024-06-10T12:00:00.123+00:00",
        GPT4O,
    )
    assert data.provider_name == "openai"
    assert data.total_cost == data.usage == D("0.00125")
    assert isinstance(data.total_cost, Decimal)
    assert data.cache_discount == D("0.0005")
    assert (data.latency, data.generation_time) == (250.5, 1234.25)
    assert (data.tokens_prompt, data.tokens_completion) == (1000, 200)
    assert (data.native_tokens_prompt, data.native_tokens_completion) == (1000, 200)
    assert (data.native_tokens_cached, data.native_tokens_reasoning) == (400, 50)
    assert data.num_media_prompt == 2
    assert (data.streamed, data.cancelled) == (True, False)
    assert (data.finish_reason, data.native_finish_reason) == ("stop", "end_turn")
    assert (data.origin, data.http_referer) == ("https://example.com", "https://example.com")
    assert (data.external_user, data.session_id, data.app_title) == (
        "user-7",
        "session-9",
        "Example",
    )
    assert data.workspace_id == "default"
    assert data.provider_responses == [
        ProviderResponseOut(
            status=503,
            endpoint_id=AZURE_EP,
            latency=12.5,
            model_permaslug=GPT4O,
            provider_name="azure",
        ),
        ProviderResponseOut(
            status=200,
            endpoint_id=OPENAI_EP,
            latency=80.25,
            model_permaslug=GPT4O,
            provider_name="openai",
        ),
    ]


def test_generation_data_without_referer_or_cost() -> None:
    free = msgspec.structs.replace(
        generation(), http_referer=None, total_cost=0, cache_discount=0, provider_responses=[]
    )
    data = generation_data(free)
    assert (data.origin, data.http_referer) == ("", None)
    assert data.total_cost == data.usage == data.cache_discount == 0
    assert data.provider_responses == []


async def test_written_generation_loads_back_unchanged(db: SQLiteDatabase) -> None:
    record = generation()
    await write_batch(db, [record])
    loaded = await load_generation(db, "gen-1")
    assert loaded == record
    assert generation_data(loaded) == generation_data(record)
    assert await load_generation(db, "gen-unknown") is None


# --- keys ------------------------------------------------------------------------------------


async def test_key_data_shows_usage_and_remaining_limit(db: SQLiteDatabase) -> None:
    keys = KeyStore(db)
    await keys.ensure_account()
    _, key = await keys.create_key(name="ci", limit=D("1"), limit_reset="monthly")
    ledger = Ledger(keys)
    ledger.settle(await ledger.reserve(key, 10**12, "unused"), 250_000_000_000)
    data = await key_data(key, ledger)
    assert (data.hash, data.name, data.label) == (key.hash, "ci", key.label)
    assert data.usage == data.usage_daily == data.usage_weekly == data.usage_monthly == D("0.25")
    assert (data.limit, data.limit_remaining, data.limit_reset) == (1, D("0.75"), "monthly")
    assert data.workspace_id == "default"
    current = await current_key_data(key, ledger)
    assert (current.usage, current.limit_remaining) == (D("0.25"), D("0.75"))
    assert current.is_management_key is False


async def test_unlimited_key_has_no_remaining_limit(db: SQLiteDatabase) -> None:
    keys = KeyStore(db)
    await keys.ensure_account()
    _, key = await keys.create_key(name="ops", kind="management")
    data = await current_key_data(key, Ledger(keys))
    assert (data.limit, data.limit_remaining, data.usage) == (None, None, 0)
    assert data.is_management_key is True
