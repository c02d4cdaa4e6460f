"""Credit reservations and usage counters, held in memory on the request path.

Before a request: reserve the most it can cost; refuse with 402 if the account balance or
the key's remaining limit cannot cover it. After: settle the real cost and release the rest.
Everything here is synchronous code on the event loop, so check-and-reserve is atomic within
the process, and 50 concurrent requests cannot together spend past a limit.

This process is the only writer of usage in the embedded deployment, so its counters are
authoritative once loaded from the database; the writer persists every settlement. Credits
added by another process (the CLI, a management call elsewhere) are picked up when the
account is re-read, at most ``refresh_seconds`` later. Several processes sharing one
database need shared reservations (Redis), which the scale-out work adds.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal

from switchyard.accounting.keys import Account, KeyRecord, KeyStore
from switchyard.accounting.money import from_pico
from switchyard.accounting.periods import Periods
from switchyard.errors import PaymentRequired
from switchyard.storage.base import StorageError


@dataclass(slots=True)
class KeyUsage:
    total: int = 0
    day: str | None = None
    daily: int = 0
    week: str | None = None
    weekly: int = 0
    month: str | None = None
    monthly: int = 0
    reserved: int = 0

    def current(self, periods: Periods) -> tuple[int, int, int]:
        """Usage today, this week and this month (zero once a window has passed)."""
        return (
            self.daily if self.day == periods.day else 0,
            self.weekly if self.week == periods.week else 0,
            self.monthly if self.month == periods.month else 0,
        )

    def in_window(self, reset: str | None, periods: Periods) -> int:
        daily, weekly, monthly = self.current(periods)
        return {"daily": daily, "weekly": weekly, "monthly": monthly}.get(reset or "", self.total)

    def add(self, amount: int, periods: Periods) -> None:
        """Count ``amount`` in the windows of ``periods``. A cost settled late, for a window
        that has already given way to a newer one, counts in the total only."""
        self.total += amount
        self.day, self.daily = _roll(self.day, self.daily, periods.day, amount)
        self.week, self.weekly = _roll(self.week, self.weekly, periods.week, amount)
        self.month, self.monthly = _roll(self.month, self.monthly, periods.month, amount)


def _roll(window: str | None, used: int, period: str, amount: int) -> tuple[str | None, int]:
    """Window labels are ISO dates / YYYY-MM, so they compare in time order as strings."""
    if window == period:
        return window, used + amount
    if window is None or period > window:
        return period, amount
    return window, used  # an older window: already closed


@dataclass(slots=True)
class AccountBalance:
    enforce: bool
    credits: int
    usage: int
    reserved: int = 0
    read_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Reservation:
    key: KeyRecord
    amount: int
    settled: bool = False
    hold: str | None = None  # the hold's id when it was reserved in shared state (Redis)


class Ledger:
    def __init__(self, keys: KeyStore, refresh_seconds: float = 5.0) -> None:
        self._keys = keys
        self._refresh = refresh_seconds
        self._usage: dict[str, KeyUsage] = {}
        self._accounts: dict[str, AccountBalance] = {}

    async def key_usage(self, key: KeyRecord) -> KeyUsage:
        usage = self._usage.get(key.hash)
        if usage is None:
            row = await self._keys.usage_row(key.hash)
            loaded = KeyUsage()
            if row is not None:
                loaded = KeyUsage(
                    total=int(row["usage_total"]),
                    day=row["usage_day"],
                    daily=int(row["usage_daily"]),
                    week=row["usage_week"],
                    weekly=int(row["usage_weekly"]),
                    month=row["usage_month"],
                    monthly=int(row["usage_monthly"]),
                )
            # Another coroutine may have loaded it while we awaited; keep the first.
            usage = self._usage.setdefault(key.hash, loaded)
        return usage

    async def balance(self, account_id: str) -> AccountBalance | None:
        balance = self._accounts.get(account_id)
        if balance is None or time.monotonic() - balance.read_at > self._refresh:
            try:
                account = await self._keys.account(account_id)
            except StorageError:
                if balance is None:
                    raise
                # The database is away: what we know is current but for grants made
                # meanwhile, since our own settlements keep counting here.
                return balance
            if account is None:
                return None
            balance = self._refreshed(account_id, account)
        return balance

    def _refreshed(self, account_id: str, account: Account) -> AccountBalance:
        balance = self._accounts.get(account_id)
        if balance is None:
            balance = self._accounts[account_id] = AccountBalance(
                account.enforce_balance, account.total_credits, account.total_usage
            )
        else:
            # Credits may have been granted elsewhere; usage is ours and ahead of the row.
            balance.enforce = account.enforce_balance
            balance.credits = account.total_credits
            balance.usage = max(balance.usage, account.total_usage)
            balance.read_at = time.monotonic()
        return balance

    def forget(self, key_hash: str) -> None:
        self._usage.pop(key_hash, None)

    async def available(self, key: KeyRecord) -> int | None:
        """What the key may still spend now, in picodollars; None when unlimited."""
        return _headroom(key, await self.key_usage(key), await self.balance(key.account_id))

    def limit_remaining(self, key: KeyRecord, usage: KeyUsage) -> int | None:
        if key.limit_pico is None:
            return None
        return max(0, key.limit_pico - usage.in_window(key.limit_reset, Periods.now()))

    async def reserve(self, key: KeyRecord, amount: int, explain: str) -> Reservation:
        """Hold ``amount`` picodollars or raise 402; ``explain`` is appended to the message."""
        # Load first (may await), then check and reserve with no await in between.
        usage = await self.key_usage(key)
        balance = await self.balance(key.account_id)
        available = _headroom(key, usage, balance)
        if available is not None and amount > available:
            raise PaymentRequired(explain, metadata={"available_usd": str(_usd(available))})
        usage.reserved += amount
        if balance is not None:
            balance.reserved += amount
        return Reservation(key, amount)

    def settle(self, reservation: Reservation, cost: int, at: dt.datetime | None = None) -> None:
        """Release the hold and count the real cost (which may be zero)."""
        if reservation.settled:
            return
        reservation.settled = True
        key = reservation.key
        usage = self._usage.get(key.hash)
        if usage is not None:
            usage.reserved -= reservation.amount
            if cost:
                usage.add(cost, Periods.at(at) if at else Periods.now())
        balance = self._accounts.get(key.account_id)
        if balance is not None:
            balance.reserved -= reservation.amount
            balance.usage += cost


def _headroom(key: KeyRecord, usage: KeyUsage, balance: AccountBalance | None) -> int | None:
    """The tighter of the key's remaining limit and the account's unreserved balance."""
    limits: list[int] = []
    if key.limit_pico is not None:
        used = usage.in_window(key.limit_reset, Periods.now())
        limits.append(key.limit_pico - used - usage.reserved)
    if balance is not None and balance.enforce:
        limits.append(balance.credits - balance.usage - balance.reserved)
    return min(limits) if limits else None


def _usd(pico: int) -> Decimal:
    return from_pico(max(pico, 0))
