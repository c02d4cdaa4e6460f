"""Ledger: reservations against key limits and account balances, and usage windows."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.periods import Periods
from switchyard.errors import PaymentRequired
from switchyard.storage.sqlite import SQLiteDatabase

D = Decimal
USD = 10**12  # picodollars


@pytest.fixture
def ledger(keys: KeyStore) -> Ledger:
    return Ledger(keys)


async def new_key(
    keys: KeyStore,
    limit: str | None = None,
    reset: str | None = None,
    account_id: str = "default",
) -> KeyRecord:
    _, record = await keys.create_key(
        name="k",
        account_id=account_id,
        limit=D(limit) if limit is not None else None,
        limit_reset=reset,
    )
    return record


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def refused(ledger: Ledger, key: KeyRecord, amount: int) -> PaymentRequired:
    with pytest.raises(PaymentRequired) as info:
        await ledger.reserve(key, amount, "explained")
    return info.value


# --- reserving against a key's limit ---------------------------------------------------------


async def test_reserve_within_limit_reduces_available(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1")
    assert await ledger.available(key) == USD
    reservation = await ledger.reserve(key, 3 * USD // 10, "unused")
    assert reservation.amount == 3 * USD // 10
    assert reservation.key == key and not reservation.settled
    assert await ledger.available(key) == 7 * USD // 10
    await ledger.reserve(key, USD // 10, "unused")
    assert await ledger.available(key) == 6 * USD // 10
    assert (await ledger.key_usage(key)).reserved == 4 * USD // 10


async def test_reserve_beyond_limit_is_402_with_explanation(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="0.5")
    await ledger.reserve(key, USD // 5, "unused")
    exc = await refused(ledger, key, USD // 2)
    assert exc.status == 402
    assert exc.message == "explained"
    assert exc.metadata == {"available_usd": "0.3"}
    assert exc.to_dict()["error"]["code"] == 402
    # A refused request holds nothing.
    assert await ledger.available(key) == 3 * USD // 10


async def test_reserving_exactly_what_is_left_succeeds(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="0.000001")
    await ledger.reserve(key, 1_000_000, "unused")
    assert await ledger.available(key) == 0
    await ledger.reserve(key, 0, "unused")  # nothing more to hold
    exc = await refused(ledger, key, 1)
    assert exc.metadata == {"available_usd": "0"}


async def test_key_without_limit_on_unenforced_account_is_unlimited(
    keys: KeyStore, ledger: Ledger
) -> None:
    key = await new_key(keys)
    assert await ledger.available(key) is None
    await ledger.reserve(key, 10**6 * USD, "unused")
    assert await ledger.available(key) is None


@pytest.mark.parametrize("refresh", [5.0, 0.0])
async def test_concurrent_reservations_cannot_overspend(keys: KeyStore, refresh: float) -> None:
    ledger = Ledger(keys, refresh_seconds=refresh)
    await keys.ensure_account("acme", "Acme", enforce_balance=True)
    await keys.add_credits("acme", D(5))
    key = await new_key(keys, limit="1", account_id="acme")
    results = await asyncio.gather(
        *(ledger.reserve(key, 3 * USD // 100, "x") for _ in range(50)), return_exceptions=True
    )
    granted = [r for r in results if not isinstance(r, BaseException)]
    assert len(granted) == 33  # 33 * $0.03 = $0.99; a 34th would pass $1
    assert all(isinstance(r, PaymentRequired) for r in results if isinstance(r, BaseException))
    assert await ledger.available(key) == USD // 100


# --- account balances -----------------------------------------------------------------------


async def test_default_account_is_not_enforced(keys: KeyStore, ledger: Ledger) -> None:
    account = await keys.ensure_account()
    assert account.enforce_balance is False and account.total_credits == 0
    key = await new_key(keys)
    await ledger.reserve(key, 100 * USD, "unused")  # no credits, yet not refused
    balance = await ledger.balance("default")
    assert balance is not None and balance.reserved == 100 * USD


async def test_enforced_account_needs_credits(keys: KeyStore, ledger: Ledger) -> None:
    account = await keys.ensure_account("acme", "Acme", enforce_balance=True)
    assert account.enforce_balance is True and account.total_credits == 0
    key = await new_key(keys, account_id="acme")
    assert await ledger.available(key) == 0
    await ledger.reserve(key, 0, "unused")
    exc = await refused(ledger, key, 1)
    assert exc.status == 402 and exc.message == "explained"


async def test_balance_is_shared_by_the_accounts_keys(keys: KeyStore) -> None:
    await keys.ensure_account("acme", "Acme", enforce_balance=True)
    await keys.add_credits("acme", D(2))
    ledger = Ledger(keys)
    first = await new_key(keys, account_id="acme")
    second = await new_key(keys, account_id="acme")
    await ledger.reserve(first, 3 * USD // 2, "unused")
    assert await ledger.available(second) == USD // 2
    exc = await refused(ledger, second, 6 * USD // 10)
    assert exc.metadata == {"available_usd": "0.5"}
    await ledger.reserve(second, USD // 2, "unused")


async def test_tighter_of_key_limit_and_balance_applies(keys: KeyStore, ledger: Ledger) -> None:
    await keys.ensure_account("acme", "Acme", enforce_balance=True)
    await keys.add_credits("acme", D("0.5"))
    key = await new_key(keys, limit="1", account_id="acme")
    assert await ledger.available(key) == USD // 2
    roomy = await new_key(keys, limit="0.2", account_id="acme")
    assert await ledger.available(roomy) == USD // 5


async def test_credits_are_picked_up_after_refresh(keys: KeyStore) -> None:
    await keys.ensure_account("acme", "Acme", enforce_balance=True)
    ledger = Ledger(keys, refresh_seconds=0)
    key = await new_key(keys, account_id="acme")
    assert await ledger.available(key) == 0
    await keys.add_credits("acme", D(1))
    assert await ledger.available(key) == USD
    # A refresh keeps what this process holds and has spent (the row lags behind it).
    held = await ledger.reserve(key, 4 * USD // 10, "unused")
    spent = await ledger.reserve(key, USD // 10, "unused")
    ledger.settle(spent, USD // 20)
    await keys.add_credits("acme", D(1))
    assert await ledger.available(key) == 2 * USD - 4 * USD // 10 - USD // 20
    ledger.settle(held, 0)
    assert await ledger.available(key) == 2 * USD - USD // 20


async def test_credits_are_not_seen_before_refresh(keys: KeyStore) -> None:
    await keys.ensure_account("acme", "Acme", enforce_balance=True)
    ledger = Ledger(keys, refresh_seconds=3600)
    key = await new_key(keys, account_id="acme")
    assert await ledger.available(key) == 0
    await keys.add_credits("acme", D(1))
    assert await ledger.available(key) == 0  # the documented staleness bound
    assert await Ledger(keys, refresh_seconds=3600).available(key) == USD


# --- settling --------------------------------------------------------------------------------


async def test_settle_releases_and_counts_the_cost(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1")
    reservation = await ledger.reserve(key, 4 * USD // 10, "unused")
    ledger.settle(reservation, USD // 10)
    assert reservation.settled
    usage = await ledger.key_usage(key)
    now = Periods.now()
    assert usage.reserved == 0
    assert usage.total == usage.daily == usage.weekly == usage.monthly == USD // 10
    assert (usage.day, usage.week, usage.month) == (now.day, now.week, now.month)
    assert await ledger.available(key) == 9 * USD // 10
    balance = await ledger.balance("default")
    assert balance is not None and (balance.reserved, balance.usage) == (0, USD // 10)


async def test_settle_accumulates(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1", reset="daily")
    for cost in (1, 20, 300):
        ledger.settle(await ledger.reserve(key, 1000, "unused"), cost)
    usage = await ledger.key_usage(key)
    assert (usage.total, usage.daily, usage.weekly, usage.monthly) == (321, 321, 321, 321)
    assert usage.reserved == 0
    assert await ledger.available(key) == USD - 321


async def test_settle_with_zero_cost_only_releases(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1")
    ledger.settle(await ledger.reserve(key, USD, "unused"), 0)
    usage = await ledger.key_usage(key)
    assert (usage.total, usage.reserved, usage.day) == (0, 0, None)
    assert await ledger.available(key) == USD


async def test_settle_is_idempotent(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1")
    reservation = await ledger.reserve(key, USD // 2, "unused")
    other = await ledger.reserve(key, USD // 4, "unused")
    ledger.settle(reservation, USD // 10)
    ledger.settle(reservation, USD // 10)
    ledger.settle(reservation, USD // 3)
    usage = await ledger.key_usage(key)
    assert usage.total == USD // 10
    assert usage.reserved == USD // 4  # the other hold is untouched
    balance = await ledger.balance("default")
    assert balance is not None and (balance.usage, balance.reserved) == (USD // 10, USD // 4)
    ledger.settle(other, 0)
    assert await ledger.available(key) == 9 * USD // 10


def window_start(reset: str, now: dt.datetime) -> dt.datetime:
    """The first instant of the current window, worked out without Periods."""
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    if reset == "daily":
        return midnight
    if reset == "weekly":
        return midnight - dt.timedelta(days=now.weekday())
    return midnight.replace(day=1)


@pytest.mark.parametrize("reset", ["daily", "weekly", "monthly"])
async def test_cost_in_a_previous_window_does_not_count(
    keys: KeyStore, ledger: Ledger, reset: str
) -> None:
    key = await new_key(keys, limit="1", reset=reset)
    before = window_start(reset, utc_now()) - dt.timedelta(microseconds=1)
    ledger.settle(await ledger.reserve(key, USD // 2, "unused"), USD // 2, at=before)
    usage = await ledger.key_usage(key)
    assert usage.in_window(reset, Periods.now()) == 0
    assert usage.total == USD // 2
    assert await ledger.available(key) == USD
    assert ledger.limit_remaining(key, usage) == USD


@pytest.mark.parametrize("reset", ["daily", "weekly", "monthly"])
async def test_cost_at_the_start_of_the_window_counts(
    keys: KeyStore, ledger: Ledger, reset: str
) -> None:
    key = await new_key(keys, limit="1", reset=reset)
    start = window_start(reset, utc_now())
    ledger.settle(await ledger.reserve(key, USD // 2, "unused"), USD // 4, at=start)
    usage = await ledger.key_usage(key)
    assert usage.in_window(reset, Periods.now()) == USD // 4
    assert await ledger.available(key) == 3 * USD // 4


async def test_windows_are_independent(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1")
    last_month = window_start("monthly", utc_now()) - dt.timedelta(days=1)
    ledger.settle(await ledger.reserve(key, 0, "unused"), 7, at=last_month)
    ledger.settle(await ledger.reserve(key, 0, "unused"), 5)
    usage = await ledger.key_usage(key)
    now = Periods.now()
    assert usage.current(now) == (5, 5, 5)
    assert usage.in_window(None, now) == usage.total == 12
    # No reset: the limit is for the key's whole life.
    assert await ledger.available(key) == USD - 12


@pytest.mark.parametrize("reset", ["daily", "weekly", "monthly"])
async def test_late_settlement_for_a_closed_window_keeps_the_current_one(
    keys: KeyStore, ledger: Ledger, reset: str
) -> None:
    # A request started before the window turned settles after one started since.
    key = await new_key(keys, limit="1", reset=reset)
    ledger.settle(await ledger.reserve(key, USD // 2, "unused"), USD // 2)
    before = window_start(reset, utc_now()) - dt.timedelta(microseconds=1)
    ledger.settle(await ledger.reserve(key, USD // 4, "unused"), USD // 4, at=before)
    usage = await ledger.key_usage(key)
    assert usage.in_window(reset, Periods.now()) == USD // 2
    assert usage.total == 3 * USD // 4
    assert usage.reserved == 0
    assert await ledger.available(key) == USD // 2


# --- limit_remaining -------------------------------------------------------------------------


async def test_limit_remaining(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys, limit="1")
    ledger.settle(await ledger.reserve(key, USD // 2, "unused"), 3 * USD // 10)
    await ledger.reserve(key, USD // 5, "unused")  # holds do not show in limit_remaining
    usage = await ledger.key_usage(key)
    assert ledger.limit_remaining(key, usage) == 7 * USD // 10
    assert await ledger.available(key) == USD // 2
    unlimited = await new_key(keys)
    assert ledger.limit_remaining(unlimited, await ledger.key_usage(unlimited)) is None


async def test_limit_remaining_is_never_negative(
    db: SQLiteDatabase, keys: KeyStore, ledger: Ledger
) -> None:
    key = await new_key(keys, limit="1")
    await db.execute("UPDATE api_keys SET usage_total = ? WHERE hash = ?", 3 * USD // 2, key.hash)
    usage = await ledger.key_usage(key)
    assert ledger.limit_remaining(key, usage) == 0
    assert await ledger.available(key) == -USD // 2
    await refused(ledger, key, 0)  # overdrawn: even a free request is refused


# --- counters loaded from the database ------------------------------------------------------


async def test_usage_is_loaded_from_the_row(
    db: SQLiteDatabase, keys: KeyStore, ledger: Ledger
) -> None:
    key = await new_key(keys, limit="0.000001", reset="daily")
    now = Periods.now()
    await db.execute(
        "UPDATE api_keys SET usage_total = 500, usage_day = ?, usage_daily = 200,"
        " usage_week = ?, usage_weekly = 300, usage_month = ?, usage_monthly = 400"
        " WHERE hash = ?",
        now.day,
        now.week,
        now.month,
        key.hash,
    )
    usage = await Ledger(keys).key_usage(key)
    assert (usage.total, usage.daily, usage.weekly, usage.monthly) == (500, 200, 300, 400)
    assert (usage.day, usage.week, usage.month) == (now.day, now.week, now.month)
    assert usage.reserved == 0
    assert await ledger.available(key) == 1_000_000 - 200


async def test_stale_windows_in_the_row_count_as_zero(
    db: SQLiteDatabase, keys: KeyStore, ledger: Ledger
) -> None:
    key = await new_key(keys, limit="0.000001", reset="weekly")
    await db.execute(
        "UPDATE api_keys SET usage_total = 900, usage_day = '2020-01-06', usage_daily = 9,"
        " usage_week = '2020-01-06', usage_weekly = 90, usage_month = '2020-01',"
        " usage_monthly = 900 WHERE hash = ?",
        key.hash,
    )
    usage = await ledger.key_usage(key)
    assert usage.current(Periods.now()) == (0, 0, 0)
    assert await ledger.available(key) == 1_000_000
    ledger.settle(await ledger.reserve(key, 10, "unused"), 10)
    assert usage.current(Periods.now()) == (10, 10, 10)
    assert usage.total == 910


async def test_usage_is_read_once_then_kept_in_memory(
    db: SQLiteDatabase, keys: KeyStore, ledger: Ledger
) -> None:
    key = await new_key(keys, limit="1")
    ledger.settle(await ledger.reserve(key, 100, "unused"), 100)
    await db.execute("UPDATE api_keys SET usage_total = 5000 WHERE hash = ?", key.hash)
    assert (await ledger.key_usage(key)).total == 100  # this process is authoritative
    ledger.forget(key.hash)
    assert (await ledger.key_usage(key)).total == 5000


async def test_unknown_key_has_empty_usage(keys: KeyStore, ledger: Ledger) -> None:
    key = await new_key(keys)
    await keys.delete_key(key.hash)
    usage = await ledger.key_usage(key)
    assert (usage.total, usage.day, usage.reserved) == (0, None, 0)
