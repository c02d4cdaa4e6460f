"""Uptime, latency and throughput over time: periodic samples of the live health tracker.

The tracker only knows sliding windows (the last 5 and 30 minutes, a day); charts over time
need history, so a background task stores a sample of each measured endpoint every
``interval`` seconds and drops samples older than ``RETENTION``. One row per endpoint per
interval keeps the table small and each page's query a range scan of one model's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from switchyard.catalog.schema import Catalog
from switchyard.routing.health import HealthTracker
from switchyard.storage.base import Database, StorageError

log = logging.getLogger("switchyard.stats")

RETENTION = dt.timedelta(days=30)
# The most points one page reads per model, whatever the sampling interval.
MAX_POINTS = 20_000


@dataclass(frozen=True, slots=True)
class HealthPoint:
    at: str  # ISO 8601 UTC
    uptime: float | None
    latency_p50: float | None
    throughput_p50: float | None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


class HealthRecorder:
    def __init__(
        self,
        db: Database,
        tracker: HealthTracker,
        catalog: Catalog,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._db = db
        self._tracker = tracker
        self._catalog = catalog
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._task: asyncio.Task[None] | None = None
        self._last_prune: dt.datetime | None = None

    async def sample(self) -> int:
        """Store one sample of every endpoint the tracker has measured; return how many."""
        now, at = self._clock(), self._wall()
        rows = []
        for endpoints in self._catalog.endpoints.values():
            for endpoint in endpoints:
                health = self._tracker.snapshot(endpoint.key, now)
                latency = health.latency.p50 if health.latency else None
                throughput = health.throughput.p50 if health.throughput else None
                if health.uptime_5m is None and latency is None and throughput is None:
                    continue  # nothing measured (yet, or any more): no point to draw
                provider = self._catalog.providers[endpoint.provider].name
                row = (endpoint.key, endpoint.model, provider, health.uptime_5m, latency)
                rows.append((_iso(at), *row, throughput))
        if rows:
            await self._db.executemany(
                "INSERT INTO endpoint_health (sampled_at, endpoint, model, provider_name,"
                " uptime, latency_p50, throughput_p50) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (model, sampled_at, endpoint) DO NOTHING",
                rows,
            )
        await self._prune(at)
        return len(rows)

    async def _prune(self, at: dt.datetime) -> None:
        if self._last_prune is not None and at - self._last_prune < dt.timedelta(hours=1):
            return
        self._last_prune = at
        await self._db.execute(
            "DELETE FROM endpoint_health WHERE sampled_at < ?", _iso(at - RETENTION)
        )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sample()
            except StorageError as exc:
                # The database is away (the writer logs the outage once); one line, no trace.
                log.warning("endpoint health sample skipped: %s", exc)
            except Exception:  # a missed sample is a gap in a chart, not a reason to stop
                log.exception("sampling endpoint health failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def health_history(
    db: Database, model: str, since: dt.datetime
) -> dict[tuple[str, str], list[HealthPoint]]:
    """Samples of each endpoint of ``model`` since ``since``, oldest first, keyed by
    (endpoint key, provider name)."""
    rows = await db.fetchall(
        "SELECT sampled_at, endpoint, provider_name, uptime, latency_p50, throughput_p50"
        " FROM endpoint_health WHERE model = ? AND sampled_at >= ?"
        f" ORDER BY sampled_at LIMIT {MAX_POINTS}",
        model,
        _iso(since),
    )
    history: dict[tuple[str, str], list[HealthPoint]] = {}
    for r in rows:
        point = HealthPoint(r["sampled_at"], r["uptime"], r["latency_p50"], r["throughput_p50"])
        history.setdefault((r["endpoint"], r["provider_name"]), []).append(point)
    return history
