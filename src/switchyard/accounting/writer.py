"""Durable, batched usage writes.

A settled generation is appended to a journal file (one JSON line, a single write() before
the response is acknowledged) and kept in memory until a background task writes a batch to
the database in one transaction. If the process dies between the response and that write,
the journal is still on disk (the OS has it; the process only lost its memory), and the next
start replays it before serving. Replays are idempotent: a generation already in the
database is skipped, and only newly inserted generations add to counters.

The journal is rotated at each flush: new records go to a fresh file while the batch from
the previous one is written; the old file is deleted only after its batch has committed.

If the database is unreachable, nothing is lost: the records stay journalled and pending,
and the flush is retried with a growing delay (logged once when writes start failing and
once when they succeed again). Several processes may share one journal directory (workers
of one server): each holds an exclusive lock on its own journal files while it lives, and
at start-up only the files nobody holds, left by a process that died, are replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import logging
import os
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec

from switchyard.accounting.periods import Periods
from switchyard.accounting.records import GenerationRecord
from switchyard.storage.base import Database, Queries

log = logging.getLogger("switchyard.usage")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(GenerationRecord)

# Retry delays after a failed write: doubling from the flush interval up to this.
MAX_RETRY_SECONDS = 5.0


class UsageWriter:
    def __init__(
        self, db: Database, journal_dir: Path, *, flush_interval: float = 0.2, batch: int = 500
    ) -> None:
        self._db = db
        self._dir = journal_dir
        self._interval = flush_interval
        self._batch = batch
        self._pending: dict[str, GenerationRecord] = {}
        self._file: int | None = None
        self._path: Path | None = None
        self._sealed: list[tuple[Path, int]] = []  # written out, kept open (and locked)
        self._seq = 0
        self._tag = secrets.token_hex(4)  # process ids are reused; journal names must not be
        self._failures = 0  # consecutive failed flushes
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    # --- start-up: replay what a previous process left behind -----------------------------

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        leftovers: list[tuple[Path, int]] = []
        try:
            for path in sorted(self._dir.glob("usage-*.journal")):
                fd = _claim(path)
                if fd is not None:  # else a live process (another worker) owns it
                    leftovers.append((path, fd))
            records: list[GenerationRecord] = []
            for path, _fd in leftovers:
                records.extend(_read_journal(path))
            if records:
                inserted = await write_batch(self._db, records)
                log.info("replayed %d journalled generations (%d new)", len(records), inserted)
            for path, _fd in leftovers:
                path.unlink()
        finally:
            for _path, fd in leftovers:
                os.close(fd)
        self._seq = 0
        self._open_journal()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _open_journal(self) -> None:
        self._seq += 1
        name = f"usage-{os.getpid()}-{self._tag}-{self._seq:08d}.journal"
        self._path = self._dir / name
        self._file = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours: no one may replay it

    # --- the request path ------------------------------------------------------------------

    def record(self, record: GenerationRecord) -> None:
        """Journal (durable against a process crash) and queue for the database."""
        assert self._file is not None, "UsageWriter.start() was not awaited"
        os.write(self._file, _encoder.encode(record) + b"\n")
        self._pending[record.id] = record
        if len(self._pending) >= self._batch:
            self._wake.set()

    def pending(self, generation_id: str) -> GenerationRecord | None:
        return self._pending.get(generation_id)

    # --- background flushing ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # keep the journal; retry after a pause
                self._failed(exc)
                await asyncio.sleep(self.retry_delay())
            else:
                self._recovered()

    def retry_delay(self) -> float:
        """How long to wait before the next attempt, after ``failures`` failed flushes."""
        if not self._failures:
            return 0.0
        return min(self._interval * 2.0 ** (self._failures - 1), MAX_RETRY_SECONDS)

    @property
    def failures(self) -> int:
        return self._failures

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            log.error(
                "writing usage to the database failed (%s); %d generations stay journalled"
                " and will be written when it is reachable again",
                exc,
                len(self._pending),
            )
        else:
            log.debug("usage write attempt %d failed: %s", self._failures, exc)

    def _recovered(self) -> None:
        if self._failures:
            log.warning(
                "usage writes resumed after %d failed attempts; the backlog is written",
                self._failures,
            )
            self._failures = 0

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch = list(self._pending.values())
            # Seal the journal that holds this batch; new records go to a fresh one. After a
            # failed write the sealed file stays, and records that arrive meanwhile share
            # one fresh file: an outage must not open a file (and hold its lock) per retry.
            assert self._file is not None and self._path is not None
            if os.fstat(self._file).st_size and not self._sealed:
                self._sealed.append((self._path, self._file))
                self._open_journal()
            await write_batch(self._db, batch)  # on failure: sealed files and pending stay
            for record in batch:
                if self._pending.get(record.id) is record:
                    del self._pending[record.id]
            # Every record in a sealed journal was pending, so all of them are now written.
            for path, fd in self._sealed:
                path.unlink(missing_ok=True)
                os.close(fd)
            self._sealed.clear()
            if not self._pending:
                # The current file holds only written records (those of the outage).
                os.ftruncate(self._file, 0)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception as exc:
            # Still journalled: the next start (of any worker) replays it.
            log.error(
                "could not write %d generations at shutdown (%s); they stay journalled in %s"
                " and are written at the next start",
                len(self._pending),
                exc,
                self._dir,
            )
        for _path, fd in self._sealed:
            os.close(fd)
        self._sealed.clear()
        if self._file is not None:
            os.close(self._file)
            self._file = None
        if self._path is not None and not self._pending:
            self._path.unlink(missing_ok=True)


def _claim(path: Path) -> int | None:
    """Open and lock a leftover journal; None if a live process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # its owner just finished with it
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _read_journal(path: Path) -> list[GenerationRecord]:
    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(_decoder.decode(line))
        except msgspec.DecodeError:
            # Only a torn last line (the process died mid-write) can be partial.
            log.warning("skipping unreadable line %d of %s", number, path.name)
    return records


async def write_batch(db: Database, records: list[GenerationRecord]) -> int:
    """Insert generations and add them to counters, in one transaction; return how many
    were new (a replayed generation already written is skipped entirely).

    A batch costs a fixed handful of statements whatever its size: the generations go in
    with one executemany, and the counters are summed in Python first, one row per key,
    account and activity bucket. (One statement per generation and counter made the write
    cost about five database round trips per request, which showed in a profile.)"""
    async with db.transaction() as tx:
        new = await _unwritten(tx, records)
        await tx.executemany(_INSERT_GENERATION, [_generation_row(r) for r in new])
        await _count(tx, new)
    return len(new)


# Bounded so the IN list stays far below any database's limit on bound parameters.
_LOOKUP_CHUNK = 500


async def _unwritten(tx: Queries, records: list[GenerationRecord]) -> list[GenerationRecord]:
    """The records not yet in the database, each id once, in order."""
    unique = list({r.id: r for r in reversed(records)}.values())[::-1]  # first of each id
    written: set[str] = set()
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        ids = [r.id for r in unique[start : start + _LOOKUP_CHUNK]]
        marks = ", ".join("?" * len(ids))
        rows = await tx.fetchall(f"SELECT id FROM generations WHERE id IN ({marks})", *ids)
        written.update(row["id"] for row in rows)
    return [r for r in unique if r.id not in written]


_INSERT_GENERATION = (
    "INSERT INTO generations (id, account_id, key_hash, created_at, model, endpoint,"
    " provider_name, streamed, cancelled, finish_reason, native_finish_reason, latency_ms,"
    " generation_time_ms, tokens_prompt, tokens_completion, native_tokens_cached,"
    " native_tokens_reasoning, num_media_prompt, total_cost, cache_discount, http_referer,"
    " app_title, user_id, session_id, provider_responses)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)


def _generation_row(r: GenerationRecord) -> tuple[object, ...]:
    return (
        r.id,
        r.account_id,
        r.key_hash,
        r.created_at,
        r.model,
        r.endpoint,
        r.provider_name,
        int(r.streamed),
        int(r.cancelled),
        r.finish_reason,
        r.native_finish_reason,
        r.latency_ms,
        r.generation_time_ms,
        r.tokens_prompt,
        r.tokens_completion,
        r.native_tokens_cached,
        r.native_tokens_reasoning,
        r.num_media_prompt,
        r.total_cost,
        r.cache_discount,
        r.http_referer,
        r.app_title,
        r.user_id,
        r.session_id,
        _encoder.encode(r.provider_responses).decode(),
    )


_WINDOW_COUNTER = {"day": "usage_daily", "week": "usage_weekly", "month": "usage_monthly"}


def _window_sql(window: str) -> str:
    """Add to the current window; a newer period starts it afresh; an older one (a request
    that settled after midnight for yesterday) leaves it alone. Labels compare as strings.
    Applying sums per period in any order gives the same result, so a batch's sums need no
    ordering."""
    label, counter = f"usage_{window}", _WINDOW_COUNTER[window]
    return (
        f"{counter} = CASE WHEN {label} = ? THEN {counter} + ?"
        f" WHEN {label} IS NULL OR {label} < ? THEN ? ELSE {counter} END,"
        f" {label} = CASE WHEN {label} IS NULL OR {label} < ? THEN ? ELSE {label} END"
    )


def _window_params(period: str, cost: int) -> tuple[object, ...]:
    return (period, cost, period, cost, period, period)


_ADD_KEY_USAGE = (
    "UPDATE api_keys SET usage_total = usage_total + ?, "
    + ", ".join(_window_sql(w) for w in ("day", "week", "month"))
    + " WHERE hash = ?"
)
_ADD_ACCOUNT_USAGE = "UPDATE accounts SET total_usage = total_usage + ? WHERE id = ?"
_ADD_ACTIVITY = (
    "INSERT INTO activity_daily (day, account_id, key_hash, model, endpoint, provider_name,"
    " requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, usage)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (day, account_id, key_hash, model, endpoint) DO UPDATE SET"
    " requests = activity_daily.requests + excluded.requests,"
    " prompt_tokens = activity_daily.prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = activity_daily.completion_tokens + excluded.completion_tokens,"
    " reasoning_tokens = activity_daily.reasoning_tokens + excluded.reasoning_tokens,"
    " cached_tokens = activity_daily.cached_tokens + excluded.cached_tokens,"
    " usage = activity_daily.usage + excluded.usage"
)
_ADD_APP_ACTIVITY = (
    "INSERT INTO app_activity_daily (day, app, http_referer, model, requests,"
    " prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (day, app, http_referer, model) DO UPDATE SET"
    " requests = app_activity_daily.requests + excluded.requests,"
    " prompt_tokens = app_activity_daily.prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = app_activity_daily.completion_tokens + excluded.completion_tokens"
)


async def _count(tx: Queries, records: list[GenerationRecord]) -> None:
    """Add new generations to the key, account, activity and app counters."""
    key_usage: dict[tuple[str, str, str, str], int] = defaultdict(int)
    account_usage: dict[str, int] = defaultdict(int)
    # Keyed like the table's primary key; provider_name is kept from the first row, as the
    # upsert would keep it.
    activity: dict[tuple[str, str, str, str, str], list[Any]] = {}
    apps: dict[tuple[str, str, str, str], list[int]] = {}
    for r in records:
        cost = r.total_cost
        if cost:
            periods = Periods.at(dt.datetime.fromisoformat(r.created_at))
            key_usage[(r.key_hash, periods.day, periods.week, periods.month)] += cost
            account_usage[r.account_id] += cost
        bucket = (r.day, r.account_id, r.key_hash, r.model, r.endpoint or "")
        added = (
            1,
            r.tokens_prompt,
            r.tokens_completion,
            r.native_tokens_reasoning,
            r.native_tokens_cached,
            cost,
        )
        if bucket in activity:
            row = activity[bucket]
            row[6:] = [a + b for a, b in zip(row[6:], added, strict=True)]
        else:
            activity[bucket] = [*bucket, r.provider_name or "", *added]
        if r.app_title or r.http_referer:
            app = (r.day, r.app_title or r.http_referer or "", r.http_referer or "", r.model)
            sums = apps.setdefault(app, [0, 0, 0])
            sums[0] += 1
            sums[1] += r.tokens_prompt
            sums[2] += r.tokens_completion
    await tx.executemany(
        _ADD_KEY_USAGE,
        [
            (
                cost,
                *_window_params(day, cost),
                *_window_params(week, cost),
                *_window_params(month, cost),
                key_hash,
            )
            for (key_hash, day, week, month), cost in key_usage.items()
        ],
    )
    await tx.executemany(
        _ADD_ACCOUNT_USAGE, [(cost, account) for account, cost in account_usage.items()]
    )
    await tx.executemany(_ADD_ACTIVITY, [tuple(row) for row in activity.values()])
    await tx.executemany(_ADD_APP_ACTIVITY, [(*app, *sums) for app, sums in apps.items()])
