"""Token counts by model, day and app, read from the per-day rollups.

Each query is bounded by a date range over a rollup table (one row per day, account, key,
model and endpoint, or per day, app and model), so its cost does not grow with traffic.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from switchyard.stats.periods import days_between
from switchyard.storage.base import Database

_SNAPSHOT_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|:[a-z0-9-]+)$")


@dataclass(frozen=True, slots=True)
class AppUsage:
    app: str  # the title the app sent, else its referer
    http_referer: str
    requests: int
    tokens: int


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    requests: int
    tokens: int


def family_of(model_id: str) -> str:
    """Dated snapshots and variants of a model share its family: ``openai/gpt-4o-2024-05-13``
    and ``openai/gpt-4o`` are versions of ``openai/gpt-4o``."""
    return _SNAPSHOT_SUFFIX.sub("", model_id)


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


async def tokens_by_model(db: Database, first: dt.date, last: dt.date) -> list[ModelUsage]:
    """Models by tokens (prompt + completion) over the days ``first`` to ``last``, most first."""
    rows = await db.fetchall(
        "SELECT model, SUM(requests) AS requests,"
        " SUM(prompt_tokens + completion_tokens) AS tokens FROM activity_daily"
        " WHERE day >= ? AND day <= ? GROUP BY model ORDER BY tokens DESC, model",
        first.isoformat(),
        last.isoformat(),
    )
    return [ModelUsage(r["model"], int(r["requests"]), int(r["tokens"])) for r in rows]


async def daily_tokens(
    db: Database, models: Sequence[str], first: dt.date, last: dt.date
) -> dict[str, list[int]]:
    """Tokens per day for each of ``models``, one value per day from ``first`` to ``last``
    (zero on days without traffic), so charts have no gaps."""
    days = days_between(first, last)
    series = {model: [0] * len(days) for model in models}
    if not models:
        return series
    index = {day: i for i, day in enumerate(days)}
    rows = await db.fetchall(
        "SELECT model, day, SUM(prompt_tokens + completion_tokens) AS tokens"
        " FROM activity_daily WHERE day >= ? AND day <= ?"
        f" AND model IN ({_placeholders(models)}) GROUP BY model, day",
        first.isoformat(),
        last.isoformat(),
        *models,
    )
    for row in rows:
        series[row["model"]][index[row["day"]]] = int(row["tokens"])
    return series


async def top_apps(
    db: Database, first: dt.date, last: dt.date, model: str | None = None, limit: int = 20
) -> list[AppUsage]:
    """Apps by tokens over the days ``first`` to ``last``, optionally for one model."""
    sql = (
        "SELECT app, http_referer, SUM(requests) AS requests,"
        " SUM(prompt_tokens + completion_tokens) AS tokens FROM app_activity_daily"
        " WHERE day >= ? AND day <= ?"
    )
    params: list[object] = [first.isoformat(), last.isoformat()]
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    sql += f" GROUP BY app, http_referer ORDER BY tokens DESC, app LIMIT {int(limit)}"
    rows = await db.fetchall(sql, *params)
    return [
        AppUsage(r["app"], r["http_referer"], int(r["requests"]), int(r["tokens"])) for r in rows
    ]


async def version_shares(
    db: Database, model_id: str, known_models: Sequence[str], first: dt.date, last: dt.date
) -> list[tuple[str, int, float]]:
    """The versions of ``model_id``'s family by token share: (model, tokens, percent)."""
    family = family_of(model_id)
    versions = [m for m in known_models if family_of(m) == family]
    totals = await daily_tokens(db, versions, first, last)
    tokens = {model: sum(days) for model, days in totals.items()}
    whole = sum(tokens.values())
    ranked = sorted(tokens.items(), key=lambda item: (-item[1], item[0]))
    return [(m, t, round(100 * t / whole, 2) if whole else 0.0) for m, t in ranked]


@dataclass(frozen=True, slots=True)
class AccountActivity:
    day: str
    model: str
    provider_name: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    usage: int  # picodollars


async def account_activity(
    db: Database, account_id: str, first: dt.date, last: dt.date
) -> list[AccountActivity]:
    """One account's traffic by day, model and provider, today included, newest first."""
    rows = await db.fetchall(
        "SELECT day, model, provider_name, SUM(requests) AS requests,"
        " SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,"
        " SUM(usage) AS usage FROM activity_daily"
        " WHERE account_id = ? AND day >= ? AND day <= ?"
        " GROUP BY day, model, provider_name ORDER BY day DESC, model, provider_name",
        account_id,
        first.isoformat(),
        last.isoformat(),
    )
    return [
        AccountActivity(
            r["day"],
            r["model"],
            r["provider_name"],
            int(r["requests"]),
            int(r["prompt_tokens"]),
            int(r["completion_tokens"]),
            int(r["usage"]),
        )
        for r in rows
    ]
