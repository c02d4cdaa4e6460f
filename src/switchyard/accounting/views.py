"""Accounting data as the API shows it: keys with usage, credits, generations, activity."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from switchyard.accounting.keys import KeyRecord
from switchyard.accounting.ledger import KeyUsage, Ledger
from switchyard.accounting.money import from_pico
from switchyard.accounting.periods import Periods
from switchyard.accounting.records import GenerationRecord
from switchyard.storage.base import Database, Row
from switchyard.wire.accounts import (
    ActivityItem,
    CurrentKeyData,
    FreeModelDailyRequests,
    GenerationData,
    KeyData,
    ProviderResponseOut,
    RateLimit,
)

ACTIVITY_DAYS = 30


def _usage_fields(key: KeyRecord, usage: KeyUsage, ledger: Ledger) -> dict[str, Any]:
    daily, weekly, monthly = usage.current(Periods.now())
    remaining = ledger.limit_remaining(key, usage)
    return {
        "usage": from_pico(usage.total),
        "usage_daily": from_pico(daily),
        "usage_weekly": from_pico(weekly),
        "usage_monthly": from_pico(monthly),
        "limit": key.limit,
        "limit_remaining": from_pico(remaining) if remaining is not None else None,
        "limit_reset": key.limit_reset,
        "include_byok_in_limit": key.include_byok_in_limit,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "workspace_id": key.account_id,
    }


async def key_data(key: KeyRecord, ledger: Ledger) -> KeyData:
    usage = await ledger.key_usage(key)
    return KeyData(
        hash=key.hash,
        name=key.name,
        label=key.label,
        disabled=key.disabled,
        created_at=key.created_at,
        updated_at=key.updated_at,
        **_usage_fields(key, usage, ledger),
    )


async def current_key_data(key: KeyRecord, ledger: Ledger) -> CurrentKeyData:
    usage = await ledger.key_usage(key)
    return CurrentKeyData(
        label=key.label,
        is_management_key=key.kind == "management",
        rate_limit=RateLimit(
            interval="10s", note="Switchyard applies no request rate limit", requests=-1
        ),
        allowed_data_regions=["global"],
        budgets=[],
        free_model_daily_requests=FreeModelDailyRequests(limit=-1, remaining=-1, used=0),
        **_usage_fields(key, usage, ledger),
    )


def generation_data(record: GenerationRecord) -> GenerationData:
    cost = from_pico(record.total_cost)
    return GenerationData(
        id=record.id,
        created_at=record.created_at,
        model=record.model,
        provider_name=record.provider_name,
        origin=record.http_referer or "",
        http_referer=record.http_referer,
        external_user=record.user_id,
        latency=record.latency_ms,
        generation_time=record.generation_time_ms,
        tokens_prompt=record.tokens_prompt,
        tokens_completion=record.tokens_completion,
        native_tokens_prompt=record.tokens_prompt,
        native_tokens_completion=record.tokens_completion,
        native_tokens_cached=record.native_tokens_cached,
        native_tokens_reasoning=record.native_tokens_reasoning,
        num_media_prompt=record.num_media_prompt,
        total_cost=cost,
        usage=cost,
        cache_discount=from_pico(record.cache_discount),
        streamed=record.streamed,
        cancelled=record.cancelled,
        finish_reason=record.finish_reason,
        native_finish_reason=record.native_finish_reason,
        workspace_id=record.account_id,
        session_id=record.session_id,
        app_title=record.app_title,
        provider_responses=[
            ProviderResponseOut(
                status=attempt.get("status"),
                endpoint_id=attempt.get("endpoint"),
                latency=attempt.get("latency"),
                model_permaslug=record.model,
                provider_name=attempt.get("provider_name"),
            )
            for attempt in record.provider_responses
        ],
    )


def record_from_row(row: Row) -> GenerationRecord:
    values = dict(row)
    values["provider_responses"] = msgspec.json.decode(values["provider_responses"])
    values["day"] = values["created_at"][:10]
    for flag in ("streamed", "cancelled"):
        values[flag] = bool(values[flag])
    return msgspec.convert(values, GenerationRecord)


async def load_generation(db: Database, generation_id: str) -> GenerationRecord | None:
    row = await db.fetchone("SELECT * FROM generations WHERE id = ?", generation_id)
    return record_from_row(row) if row else None


async def activity(
    db: Database, account_id: str, key_hash: str | None, day: str | None
) -> list[ActivityItem]:
    """The last 30 complete UTC days (today excluded), by day, model and endpoint."""
    today = dt.datetime.now(dt.UTC).date()
    first = (today - dt.timedelta(days=ACTIVITY_DAYS)).isoformat()
    sql = (
        "SELECT day, model, endpoint, provider_name, SUM(requests) AS requests,"
        " SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,"
        " SUM(reasoning_tokens) AS reasoning_tokens, SUM(cached_tokens) AS cached_tokens,"
        " SUM(usage) AS usage FROM activity_daily"
        " WHERE account_id = ? AND day >= ? AND day < ?"
    )
    params: list[Any] = [account_id, first, today.isoformat()]
    if key_hash:
        sql += " AND key_hash = ?"
        params.append(key_hash)
    if day:
        sql += " AND day = ?"
        params.append(day)
    sql += " GROUP BY day, model, endpoint, provider_name ORDER BY day DESC, model, endpoint"
    return [
        ActivityItem(
            date=row["day"],
            model=row["model"],
            model_permaslug=row["model"],
            endpoint_id=row["endpoint"],
            provider_name=row["provider_name"],
            requests=int(row["requests"]),
            prompt_tokens=int(row["prompt_tokens"]),
            completion_tokens=int(row["completion_tokens"]),
            reasoning_tokens=int(row["reasoning_tokens"]),
            cached_tokens=int(row["cached_tokens"]),
            usage=from_pico(int(row["usage"])),
            byok_usage_inference=from_pico(0),
            workspace_id=account_id,
        )
        for row in await db.fetchall(sql, *params)
    ]
