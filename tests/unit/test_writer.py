"""UsageWriter: journal first, write batches later, replay what a dead process left."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from switchyard.accounting import writer as writer_module
from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.periods import Periods
from switchyard.accounting.records import GenerationRecord
from switchyard.accounting.views import load_generation
from switchyard.accounting.writer import UsageWriter, write_batch
from switchyard.storage.base import Database, Row
from switchyard.storage.sqlite import SQLiteDatabase

GPT4O = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini-2024-07-18"


@pytest.fixture
async def key(db: SQLiteDatabase) -> KeyRecord:
    keys = KeyStore(db, cache_seconds=0)
    await keys.ensure_account()
    _, record = await keys.create_key(name="k")
    return record


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
async def writer(db: SQLiteDatabase, journal: Path) -> AsyncIterator[UsageWriter]:
    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    yield usage_writer
    await usage_writer.aclose()


def record(
    key: KeyRecord,
    generation_id: str,
    *,
    created: str = "2024-06-10T12:00:00.000+00:00",
    model: str = GPT4O,
    endpoint: str | None = "openai/gpt-4o@openai",
    provider: str | None = "openai",
    cost: int = 1000,
    prompt: int = 10,
    completion: int = 5,
    cached: int = 0,
    reasoning: int = 0,
) -> GenerationRecord:
    return GenerationRecord(
        id=generation_id,
        account_id=key.account_id,
        key_hash=key.hash,
        created_at=created,
        day=created[:10],
        model=model,
        endpoint=endpoint,
        provider_name=provider,
        streamed=False,
        cancelled=False,
        finish_reason="stop",
        native_finish_reason="stop",
        latency_ms=12.5,
        generation_time_ms=40.25,
        tokens_prompt=prompt,
        tokens_completion=completion,
        native_tokens_cached=cached,
        native_tokens_reasoning=reasoning,
        num_media_prompt=0,
        total_cost=cost,
        cache_discount=0,
        http_referer=None,
        app_title=None,
        user_id=None,
        session_id=None,
        provider_responses=[
            {"endpoint": endpoint, "provider_name": provider, "status": 200, "latency": 12.5}
        ],
    )


def leftover(journal: Path, name: str, records: list[GenerationRecord], tail: bytes = b"") -> Path:
    journal.mkdir(parents=True, exist_ok=True)
    path = journal / name
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records) + tail)
    return path


def journal_files(journal: Path) -> list[Path]:
    return sorted(journal.glob("usage-*.journal"))


def journalled(journal: Path) -> list[GenerationRecord]:
    decoder = msgspec.json.Decoder(GenerationRecord)
    found = []
    for path in journal_files(journal):
        found.extend(decoder.decode(line) for line in path.read_bytes().splitlines())
    return found


async def counters(db: Database, key_hash: str) -> Row:
    row = await db.fetchone(
        "SELECT usage_total, usage_day, usage_daily, usage_week, usage_weekly, usage_month,"
        " usage_monthly FROM api_keys WHERE hash = ?",
        key_hash,
    )
    assert row is not None
    return row


async def account_usage(db: Database, account_id: str = "default") -> int:
    row = await db.fetchone("SELECT total_usage FROM accounts WHERE id = ?", account_id)
    assert row is not None
    return int(row["total_usage"])


async def generation_ids(db: Database) -> list[str]:
    return [r["id"] for r in await db.fetchall("SELECT id FROM generations ORDER BY id")]


async def activity_rows(db: Database) -> list[tuple[Any, ...]]:
    rows = await db.fetchall(
        "SELECT day, model, endpoint, provider_name, requests, prompt_tokens,"
        " completion_tokens, reasoning_tokens, cached_tokens, usage FROM activity_daily"
        " ORDER BY day, model, endpoint"
    )
    return [tuple(r.values()) for r in rows]


# --- the request path ------------------------------------------------------------------------


async def test_record_is_journalled_before_any_flush(
    db: SQLiteDatabase, key: KeyRecord, writer: UsageWriter, journal: Path
) -> None:
    first = record(key, "gen-1")
    writer.record(first)
    (path,) = journal_files(journal)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1
    assert msgspec.json.decode(lines[0], type=GenerationRecord) == first
    writer.record(record(key, "gen-2"))
    assert len(path.read_bytes().splitlines()) == 2
    assert await generation_ids(db) == []  # not in the database yet


async def test_pending_serves_unflushed_records(key: KeyRecord, writer: UsageWriter) -> None:
    first = record(key, "gen-1")
    writer.record(first)
    assert writer.pending("gen-1") is first
    assert writer.pending("gen-2") is None
    await writer.flush()
    assert writer.pending("gen-1") is None


# --- flushing --------------------------------------------------------------------------------


async def test_flush_writes_generation_and_counters(
    db: SQLiteDatabase, key: KeyRecord, writer: UsageWriter, journal: Path
) -> None:
    first = record(key, "gen-1", created="2024-06-09T23:59:59.000+00:00", cost=700)
    second = record(key, "gen-2", created="2024-06-10T00:00:01.000+00:00", cost=300)
    writer.record(first)
    writer.record(second)
    await writer.flush()
    assert await generation_ids(db) == ["gen-1", "gen-2"]
    assert await load_generation(db, "gen-1") == first
    assert await load_generation(db, "gen-2") == second
    # Chronological records: the windows end on Monday 2024-06-10, a new day and week.
    assert await counters(db, key.hash) == {
        "usage_total": 1000,
        "usage_day": "2024-06-10",
        "usage_daily": 300,
        "usage_week": "2024-06-10",
        "usage_weekly": 300,
        "usage_month": "2024-06",
        "usage_monthly": 1000,
    }
    assert await account_usage(db) == 1000
    # The sealed journal is gone; only the fresh, empty one remains.
    (path,) = journal_files(journal)
    assert path.read_bytes() == b""
    assert writer.pending("gen-1") is None and writer.pending("gen-2") is None


async def test_flush_adds_to_existing_counters(
    db: SQLiteDatabase, key: KeyRecord, writer: UsageWriter
) -> None:
    writer.record(record(key, "gen-1", cost=100))
    await writer.flush()
    writer.record(record(key, "gen-2", cost=20))
    writer.record(record(key, "gen-3", created="2024-06-12T08:00:00.000+00:00", cost=3))
    await writer.flush()
    row = await counters(db, key.hash)
    assert (row["usage_total"], row["usage_monthly"], row["usage_weekly"]) == (123, 123, 123)
    assert (row["usage_day"], row["usage_daily"]) == ("2024-06-12", 3)
    assert await account_usage(db) == 123


async def test_flush_rolls_up_activity_by_day_model_and_endpoint(
    db: SQLiteDatabase, key: KeyRecord, writer: UsageWriter
) -> None:
    day1, day2 = "2024-06-10T10:00:00.000+00:00", "2024-06-11T10:00:00.000+00:00"
    azure = "openai/gpt-4o@azure"
    for generation in [
        record(key, "a", created=day1, cost=100, prompt=10, completion=1, cached=4, reasoning=1),
        record(key, "b", created=day1, cost=200, prompt=20, completion=2, cached=5, reasoning=0),
        record(key, "c", created=day1, endpoint=azure, provider="azure", cost=40, prompt=1),
        record(key, "d", created=day2, cost=7, prompt=3, completion=3),
        record(key, "e", created=day1, model=MINI, endpoint=f"{MINI}@openai", cost=0),
        record(key, "f", created=day1, endpoint=None, provider=None, cost=9, prompt=2),
    ]:
        writer.record(generation)
    await writer.flush()
    assert await activity_rows(db) == [
        ("2024-06-10", GPT4O, "", "", 1, 2, 5, 0, 0, 9),
        ("2024-06-10", GPT4O, azure, "azure", 1, 1, 5, 0, 0, 40),
        ("2024-06-10", GPT4O, "openai/gpt-4o@openai", "openai", 2, 30, 3, 1, 9, 300),
        ("2024-06-10", MINI, f"{MINI}@openai", "openai", 1, 10, 5, 0, 0, 0),
        ("2024-06-11", GPT4O, "openai/gpt-4o@openai", "openai", 1, 3, 3, 0, 0, 7),
    ]
    keys_hashes = await db.fetchall("SELECT DISTINCT key_hash, account_id FROM activity_daily")
    assert keys_hashes == [{"key_hash": key.hash, "account_id": "default"}]


async def test_free_generation_counts_a_request_but_no_usage(
    db: SQLiteDatabase, key: KeyRecord, writer: UsageWriter
) -> None:
    writer.record(record(key, "gen-1", cost=0))
    await writer.flush()
    row = await counters(db, key.hash)
    assert (row["usage_total"], row["usage_day"]) == (0, None)
    assert await account_usage(db) == 0
    assert [r[4] for r in await activity_rows(db)] == [1]


async def test_flush_with_nothing_pending_keeps_the_journal(
    key: KeyRecord, writer: UsageWriter, journal: Path
) -> None:
    before = journal_files(journal)
    await writer.flush()
    assert journal_files(journal) == before


async def test_failed_write_keeps_records_and_journal(
    db: SQLiteDatabase,
    key: KeyRecord,
    writer: UsageWriter,
    journal: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0

    async def flaky(database: Database, records: list[GenerationRecord]) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database unavailable")
        return await write_batch(database, records)

    monkeypatch.setattr(writer_module, "write_batch", flaky)
    first = record(key, "gen-1", cost=100)
    writer.record(first)
    with pytest.raises(RuntimeError, match="database unavailable"):
        await writer.flush()
    assert writer.pending("gen-1") is first
    assert await generation_ids(db) == []
    assert journalled(journal) == [first]  # still on disk, in the sealed file
    assert len(journal_files(journal)) == 2  # sealed + the fresh one

    second = record(key, "gen-2", cost=20)
    writer.record(second)
    assert journalled(journal) == [first, second]
    await writer.flush()
    assert calls == 2
    assert await generation_ids(db) == ["gen-1", "gen-2"]
    assert (await counters(db, key.hash))["usage_total"] == 120
    assert writer.pending("gen-1") is None and writer.pending("gen-2") is None
    (path,) = journal_files(journal)
    assert path.read_bytes() == b""


async def test_background_task_flushes_a_full_batch(
    db: SQLiteDatabase, key: KeyRecord, journal: Path
) -> None:
    usage_writer = UsageWriter(db, journal, flush_interval=3600, batch=2)
    await usage_writer.start()
    try:
        usage_writer.record(record(key, "gen-1"))
        await asyncio.sleep(0.05)
        assert await generation_ids(db) == []  # below the batch size: waits for the interval
        usage_writer.record(record(key, "gen-2"))
        for _ in range(1000):  # up to 10 s: a loaded machine may be slow to flush
            if usage_writer.pending("gen-2") is None:
                break
            await asyncio.sleep(0.01)
        assert await generation_ids(db) == ["gen-1", "gen-2"]
    finally:
        await usage_writer.aclose()


async def test_background_task_flushes_on_the_interval(
    db: SQLiteDatabase, key: KeyRecord, journal: Path
) -> None:
    usage_writer = UsageWriter(db, journal, flush_interval=0.02)
    await usage_writer.start()
    try:
        usage_writer.record(record(key, "gen-1"))
        for _ in range(1000):  # up to 10 s: a loaded machine may be slow to flush
            if usage_writer.pending("gen-1") is None:
                break
            await asyncio.sleep(0.01)
        assert await generation_ids(db) == ["gen-1"]
    finally:
        await usage_writer.aclose()


async def test_aclose_flushes_and_removes_the_journal(
    db: SQLiteDatabase, key: KeyRecord, journal: Path
) -> None:
    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    usage_writer.record(record(key, "gen-1", cost=5))
    await usage_writer.aclose()
    assert await generation_ids(db) == ["gen-1"]
    assert (await counters(db, key.hash))["usage_total"] == 5
    assert journal_files(journal) == []


# --- start-up replay -------------------------------------------------------------------------


async def test_start_replays_leftover_journals(
    db: SQLiteDatabase, key: KeyRecord, journal: Path
) -> None:
    old = leftover(journal, "usage-999-00000001.journal", [record(key, "gen-1", cost=100)])
    newer = leftover(
        journal,
        "usage-999-00000002.journal",
        [record(key, "gen-2", cost=20), record(key, "gen-3", model=MINI, cost=3)],
    )
    other = journal / "notes.txt"
    other.write_text("not a journal")
    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    try:
        assert await generation_ids(db) == ["gen-1", "gen-2", "gen-3"]
        assert (await counters(db, key.hash))["usage_total"] == 123
        assert await account_usage(db) == 123
        assert not old.exists() and not newer.exists()
        assert other.exists()
        (current,) = journal_files(journal)
        assert current.read_bytes() == b""
        assert usage_writer.pending("gen-1") is None
    finally:
        await usage_writer.aclose()


async def test_replay_is_idempotent(db: SQLiteDatabase, key: KeyRecord, journal: Path) -> None:
    records = [record(key, "gen-1", cost=100), record(key, "gen-2", cost=20)]
    assert await write_batch(db, records) == 2
    before = (await counters(db, key.hash), await account_usage(db), await activity_rows(db))
    # A process that died after its batch committed but before deleting the journal.
    path = leftover(journal, "usage-999-00000001.journal", [*records, record(key, "gen-3", cost=3)])
    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    await usage_writer.aclose()
    assert not path.exists()
    assert await generation_ids(db) == ["gen-1", "gen-2", "gen-3"]
    row = await counters(db, key.hash)
    assert row["usage_total"] == before[0]["usage_total"] + 3 == 123
    assert await account_usage(db) == before[1] + 3
    requests = sum(r[4] for r in await activity_rows(db))
    assert requests == 3  # not 5: replayed generations add nothing
    assert await write_batch(db, records) == 0
    assert (await counters(db, key.hash))["usage_total"] == 123


async def test_torn_last_line_is_skipped(db: SQLiteDatabase, key: KeyRecord, journal: Path) -> None:
    torn = msgspec.json.encode(record(key, "gen-3"))[:57]
    path = leftover(
        journal,
        "usage-999-00000001.journal",
        [record(key, "gen-1", cost=1), record(key, "gen-2", cost=2)],
        tail=torn,
    )
    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    await usage_writer.aclose()
    assert await generation_ids(db) == ["gen-1", "gen-2"]
    assert (await counters(db, key.hash))["usage_total"] == 3
    assert not path.exists()


async def test_blank_lines_are_ignored(db: SQLiteDatabase, key: KeyRecord, journal: Path) -> None:
    leftover(journal, "usage-999-00000001.journal", [record(key, "gen-1")], tail=b"\n  \n")
    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    await usage_writer.aclose()
    assert await generation_ids(db) == ["gen-1"]


async def test_failed_replay_keeps_the_journal(
    db: SQLiteDatabase, key: KeyRecord, journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = leftover(journal, "usage-999-00000001.journal", [record(key, "gen-1")])

    async def broken(database: Database, records: list[GenerationRecord]) -> int:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(writer_module, "write_batch", broken)
    with pytest.raises(RuntimeError):
        await UsageWriter(db, journal).start()
    assert path.exists()


@pytest.mark.parametrize(
    ("today", "windows"),
    [
        # Tuesday: a new day, same week and month
        ("2024-06-11", {"day": 50, "week": 70, "month": 70}),
        # Monday: a new day and week, same month
        ("2024-06-10", {"day": 50, "week": 50, "month": 70}),
        # Monday 1 July: all three windows are new
        ("2024-07-01", {"day": 50, "week": 50, "month": 50}),
    ],
)
async def test_late_record_for_yesterday_keeps_todays_window(
    db: SQLiteDatabase, key: KeyRecord, today: str, windows: dict[str, int]
) -> None:
    # A request started just before midnight settles after one started just after it.
    after = dt.datetime.fromisoformat(today).replace(second=5, tzinfo=dt.UTC)
    before = after - dt.timedelta(seconds=10)
    stamp = "{:%Y-%m-%dT%H:%M:%S.000+00:00}".format
    await write_batch(
        db,
        [
            record(key, "today", created=stamp(after), cost=50),
            record(key, "yesterday", created=stamp(before), cost=20),
        ],
    )
    row = await counters(db, key.hash)
    periods = Periods.at(after)
    assert row["usage_total"] == 70
    assert (row["usage_day"], row["usage_daily"]) == (periods.day, windows["day"])
    assert (row["usage_week"], row["usage_weekly"]) == (periods.week, windows["week"])
    assert (row["usage_month"], row["usage_monthly"]) == (periods.month, windows["month"])


# --- several processes, an unreachable database ---------------------------------------------


async def test_a_journal_another_live_process_holds_is_not_replayed(
    db: SQLiteDatabase, key: KeyRecord, journal: Path
) -> None:
    # A second worker sharing the data directory starts while the first is writing.
    first = UsageWriter(db, journal, flush_interval=3600)
    await first.start()
    first.record(record(key, "gen-1", cost=100))
    (held,) = journal_files(journal)
    dead = leftover(journal, "usage-999-00000001.journal", [record(key, "gen-2", cost=20)])
    second = UsageWriter(db, journal, flush_interval=3600)
    await second.start()
    try:
        assert held.exists(), "a live worker's journal must not be taken from it"
        assert not dead.exists()
        assert await generation_ids(db) == ["gen-2"]
        await first.flush()
        assert await generation_ids(db) == ["gen-1", "gen-2"]
    finally:
        await second.aclose()
        await first.aclose()


async def test_writes_retry_with_backoff_until_the_database_returns(
    db: SQLiteDatabase,
    key: KeyRecord,
    journal: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = True
    attempts: list[float] = []
    six = asyncio.Event()

    async def unreachable(database: Database, records: list[GenerationRecord]) -> int:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) >= 6:
            six.set()
        if down:
            raise ConnectionRefusedError("database unreachable")
        return await write_batch(database, records)

    monkeypatch.setattr(writer_module, "write_batch", unreachable)
    usage_writer = UsageWriter(db, journal, flush_interval=0.01)
    await usage_writer.start()
    try:
        usage_writer.record(record(key, "gen-1", cost=100))
        await asyncio.wait_for(six.wait(), 10)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[-1] > 4 * gaps[0]  # backing off, not hammering the database
        usage_writer.record(record(key, "gen-2", cost=20))  # acknowledged meanwhile
        assert usage_writer.pending("gen-1") is not None
        assert {r.id for r in journalled(journal)} == {"gen-1", "gen-2"}
        down = False
        for _ in range(200):
            if usage_writer.pending("gen-2") is None:
                break
            await asyncio.sleep(0.01)
        assert await generation_ids(db) == ["gen-1", "gen-2"]
        assert (await counters(db, key.hash))["usage_total"] == 120
        assert usage_writer.failures == 0
    finally:
        await usage_writer.aclose()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "stay journalled" in errors[0].getMessage()


async def test_shutdown_with_the_database_down_keeps_the_journal(
    db: SQLiteDatabase, key: KeyRecord, journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(database: Database, records: list[GenerationRecord]) -> int:
        raise ConnectionRefusedError("database unreachable")

    usage_writer = UsageWriter(db, journal, flush_interval=3600)
    await usage_writer.start()
    usage_writer.record(record(key, "gen-1", cost=100))
    monkeypatch.setattr(writer_module, "write_batch", unreachable)
    await usage_writer.aclose()  # no exception: the next start writes it
    assert [r.id for r in journalled(journal)] == ["gen-1"]
    monkeypatch.undo()
    again = UsageWriter(db, journal, flush_interval=3600)
    await again.start()
    await again.aclose()
    assert await generation_ids(db) == ["gen-1"]
    assert journal_files(journal) == []


async def test_an_outage_keeps_one_sealed_journal_however_many_retries(
    db: SQLiteDatabase,
    key: KeyRecord,
    writer: UsageWriter,
    journal: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unreachable(database: Database, records: list[GenerationRecord]) -> int:
        raise ConnectionRefusedError("database unreachable")

    monkeypatch.setattr(writer_module, "write_batch", unreachable)
    for i in range(20):
        writer.record(record(key, f"gen-{i}", cost=1))
        with pytest.raises(ConnectionRefusedError):
            await writer.flush()
    assert len(journal_files(journal)) == 2  # sealed + current, not one per attempt
    assert len(journalled(journal)) == 20
    monkeypatch.undo()
    await writer.flush()
    assert len(await generation_ids(db)) == 20
    (current,) = journal_files(journal)
    assert current.read_bytes() == b""
