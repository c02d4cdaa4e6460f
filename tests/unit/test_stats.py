"""The stats the pages show: rollups written with each generation, and the queries on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.records import GenerationRecord
from switchyard.accounting.writer import write_batch
from switchyard.catalog import load_catalog
from switchyard.routing.health import HealthTracker, Outcome
from switchyard.stats import live, usage
from switchyard.stats.health_history import HealthRecorder, health_history
from switchyard.stats.periods import days_between, first_day
from switchyard.storage.base import Database
from tests.unit.test_database_backends import store

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The pages run these queries on either backend: every test runs on both."""
    async with store(request.param, tmp_path) as backend:
        yield await backend.connect()


def gen(
    key: KeyRecord,
    gid: str,
    day: dt.date,
    *,
    model: str = "openai/gpt-4o",
    prompt: int = 10,
    completion: int = 5,
    title: str | None = None,
    referer: str | None = None,
) -> GenerationRecord:
    return GenerationRecord(
        id=gid,
        account_id=key.account_id,
        key_hash=key.hash,
        created_at=f"{day.isoformat()}T12:00:00+00:00",
        day=day.isoformat(),
        model=model,
        endpoint=f"{model}@openai",
        provider_name="OpenAI",
        streamed=False,
        cancelled=False,
        finish_reason="stop",
        native_finish_reason="stop",
        latency_ms=10.0,
        generation_time_ms=20.0,
        tokens_prompt=prompt,
        tokens_completion=completion,
        native_tokens_cached=0,
        native_tokens_reasoning=0,
        num_media_prompt=0,
        total_cost=1000,
        cache_discount=0,
        http_referer=referer,
        app_title=title,
        user_id=None,
        session_id=None,
        provider_responses=[],
    )


async def _key(keys: KeyStore) -> KeyRecord:
    _, record = await keys.create_key(name="k")
    return record


async def test_tokens_by_model_counts_prompt_and_completion_within_the_days(
    db: Database, keys: KeyStore
) -> None:
    key = await _key(keys)
    await write_batch(
        db,
        [
            gen(key, "a", D1, prompt=100, completion=50),
            gen(key, "b", D2, prompt=1, completion=2),
            gen(key, "c", D2, model="openai/gpt-4o-2024-05-13", prompt=500, completion=0),
            gen(key, "d", D3, prompt=1000, completion=1000),  # outside the range below
        ],
    )
    ranked = await usage.tokens_by_model(db, D1, D2)
    assert ranked == [
        usage.ModelUsage("openai/gpt-4o-2024-05-13", 1, 500),
        usage.ModelUsage("openai/gpt-4o", 2, 153),
    ]


async def test_daily_tokens_fill_days_without_traffic_with_zero(
    db: Database, keys: KeyStore
) -> None:
    key = await _key(keys)
    await write_batch(db, [gen(key, "a", D1, prompt=7, completion=3), gen(key, "b", D3)])
    series = await usage.daily_tokens(db, ["openai/gpt-4o", "openai/gpt-4-turbo"], D1, D3)
    assert series == {"openai/gpt-4o": [10, 0, 15], "openai/gpt-4-turbo": [0, 0, 0]}
    assert await usage.daily_tokens(db, [], D1, D3) == {}


async def test_apps_are_ranked_by_tokens_and_named_by_title_then_referer(
    db: Database, keys: KeyStore
) -> None:
    key = await _key(keys)
    await write_batch(
        db,
        [
            gen(key, "a", D1, title="Big App", referer="https://big.example", prompt=900),
            gen(key, "b", D2, title="Big App", referer="https://big.example", prompt=100),
            gen(key, "c", D2, referer="https://small.example", prompt=20),
            gen(key, "d", D2, model="openai/gpt-4-turbo", title="Other", prompt=5000),
            gen(key, "e", D2, prompt=99999),  # no attribution: no app
        ],
    )
    apps = await usage.top_apps(db, D1, D2, model="openai/gpt-4o")
    assert apps == [
        usage.AppUsage("Big App", "https://big.example", 2, 1010),
        usage.AppUsage("https://small.example", "https://small.example", 1, 25),
    ]
    everything = await usage.top_apps(db, D1, D2)
    assert [a.app for a in everything] == ["Other", "Big App", "https://small.example"]
    assert [a.app for a in await usage.top_apps(db, D2, D2, limit=1)] == ["Other"]


async def test_replayed_generation_is_not_counted_twice_for_apps(
    db: Database, keys: KeyStore
) -> None:
    key = await _key(keys)
    record = gen(key, "a", D1, title="App")
    assert await write_batch(db, [record]) == 1
    assert await write_batch(db, [record]) == 0
    assert (await usage.top_apps(db, D1, D1))[0].requests == 1


def test_family_groups_dated_snapshots_with_their_model() -> None:
    assert usage.family_of("openai/gpt-4o-2024-05-13") == "openai/gpt-4o"
    assert usage.family_of("openai/gpt-4o") == "openai/gpt-4o"
    assert usage.family_of("openai/gpt-4o-mini-2024-07-18") == "openai/gpt-4o-mini"
    assert usage.family_of("meta/llama-3:free") == "meta/llama-3"


async def test_version_shares_cover_the_family_only(db: Database, keys: KeyStore) -> None:
    key = await _key(keys)
    await write_batch(
        db,
        [
            gen(key, "a", D1, model="openai/gpt-4o", prompt=75, completion=0),
            gen(key, "b", D1, model="openai/gpt-4o-2024-05-13", prompt=25, completion=0),
            gen(key, "c", D1, model="openai/gpt-4o-mini-2024-07-18", prompt=999),
        ],
    )
    known = [
        "openai/gpt-4o",
        "openai/gpt-4o-2024-05-13",
        "openai/gpt-4o-2024-11-20",
        "openai/gpt-4o-mini-2024-07-18",
    ]
    shares = await usage.version_shares(db, "openai/gpt-4o-2024-05-13", known, D1, D1)
    assert shares == [
        ("openai/gpt-4o", 75, 75.0),
        ("openai/gpt-4o-2024-05-13", 25, 25.0),
        ("openai/gpt-4o-2024-11-20", 0, 0.0),
    ]


async def test_account_activity_sees_only_its_account(db: Database, keys: KeyStore) -> None:
    mine = await _key(keys)
    other_account = await keys.ensure_account("other", "Other")
    _, theirs = await keys.create_key(name="t", account_id=other_account.id)
    await write_batch(db, [gen(mine, "a", D1, prompt=3), gen(theirs, "b", D1, prompt=1000)])
    rows = await usage.account_activity(db, mine.account_id, D1, D3)
    assert [(r.day, r.model, r.requests, r.prompt_tokens, r.usage) for r in rows] == [
        ("2026-03-01", "openai/gpt-4o", 1, 3, 1000)
    ]


def test_periods() -> None:
    assert first_day("day", D3) == D3
    assert first_day("week", D3) == D3 - dt.timedelta(days=6)
    assert first_day("month", D3) == D3 - dt.timedelta(days=29)
    assert days_between(D1, D3) == ["2026-03-01", "2026-03-02", "2026-03-03"]


class _Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += dt.timedelta(seconds=seconds)


async def test_health_recorder_stores_measured_endpoints_only(db: Database) -> None:
    catalog = load_catalog()
    tracker = HealthTracker()
    clock = _Clock()
    recorder = HealthRecorder(
        db, tracker, catalog, 60, clock=lambda: clock.mono, wall=lambda: clock.wall
    )
    served = "openai/gpt-4o@openai"
    tracker.record(served, Outcome.SUCCESS, clock.mono)
    tracker.record(served, Outcome.FAILURE, clock.mono)
    tracker.sample(served, clock.mono, latency=0.25, output_tokens=50, duration=2.0)
    assert await recorder.sample() == 1
    clock.advance(60)
    tracker.record(served, Outcome.SUCCESS, clock.mono)
    assert await recorder.sample() == 1

    history = await health_history(db, "openai/gpt-4o", clock.wall - dt.timedelta(hours=1))
    assert list(history) == [(served, "OpenAI")]
    points = history[(served, "OpenAI")]
    assert [p.at for p in points] == ["2026-03-03T12:00:00+00:00", "2026-03-03T12:01:00+00:00"]
    assert [p.uptime for p in points] == [50.0, 66.67]
    assert points[0].latency_p50 == 0.25 and points[0].throughput_p50 == 25.0
    assert await health_history(db, "openai/gpt-4-turbo", clock.wall - dt.timedelta(hours=1)) == {}
    later = await health_history(db, "openai/gpt-4o", clock.wall)
    assert [p.at for p in later[(served, "OpenAI")]] == ["2026-03-03T12:01:00+00:00"]


async def test_health_recorder_drops_samples_past_retention(db: Database) -> None:
    catalog = load_catalog()
    tracker = HealthTracker()
    clock = _Clock()
    recorder = HealthRecorder(
        db, tracker, catalog, 60, clock=lambda: clock.mono, wall=lambda: clock.wall
    )
    tracker.record("openai/gpt-4o@openai", Outcome.SUCCESS, clock.mono)
    await recorder.sample()
    clock.advance(31 * 86400)  # the tracker has forgotten it too: nothing new is sampled
    assert await recorder.sample() == 0
    rows = await db.fetchall("SELECT * FROM endpoint_health")
    assert rows == []


def test_live_model_speed_takes_the_best_endpoint() -> None:
    tracker = HealthTracker()
    tracker.sample("m@a", 10.0, latency=0.5, output_tokens=100, duration=1.0)
    tracker.sample("m@b", 10.0, latency=0.2, output_tokens=10, duration=1.0)
    tracker.record("m@a", Outcome.SUCCESS, 10.0)
    tracker.record("m@b", Outcome.FAILURE, 10.0)
    health = [tracker.snapshot(k, 11.0) for k in ("m@a", "m@b", "m@unused")]
    speed = live.model_speed(iter(health))
    assert speed == live.ModelSpeed(throughput_p50=100.0, latency_p50=0.2)
    assert live.average_uptime(health) == 50.0
    assert live.model_speed([]) == live.ModelSpeed(None, None)
    assert live.average_uptime([]) is None
