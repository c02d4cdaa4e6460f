"""Credit reservations and usage shared by every replica, in Redis.

The in-process :class:`Ledger` is exact for one process. Replicas behind a load balancer
need one view of each key's spending, so here the check-and-reserve runs as a Lua script
inside Redis, atomic across replicas, and settlements add to counters there:

- ``sy:k:<hash>:u:<window>``: a key's usage (total, per day, week and month);
- ``sy:a:<account>:used``: an account's usage;
- ``sy:k:<hash>:holds`` / ``sy:a:<account>:holds``: open reservations, one member each,
  scored by a deadline so that a replica that dies mid-request cannot hold credit forever.

Counters are seeded from the database the first time any replica needs them; the
database stays the record (every settlement is also journalled and written there).
Amounts in Redis are nanodollars: Lua computes in doubles, exact to 2**53, which in
picodollars would cap balances at $9,007. Costs and holds round up and limits down, so
rounding can only refuse early, never overspend.

If Redis is unavailable the in-process ledger takes over (limits then hold per replica),
and settlements made meanwhile are replayed into Redis when it returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from typing import Any

from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.ledger import AccountBalance, Ledger, Reservation, _usd
from switchyard.accounting.periods import Periods
from switchyard.errors import PaymentRequired
from switchyard.shared.redis import REDIS_ERRORS, SharedRedis

log = logging.getLogger("switchyard.accounting")

WINDOW_TTL_MS = 40 * 24 * 3600 * 1000  # a month's window outlives the month a little
NO_LIMIT = -1

# KEYS: key holds, key window counter, account holds, account usage, key seeded flag,
#       account seeded flag
# ARGV: now_ms, deadline_ms, member, amount, key_limit, credits, commit (1 / 0)
# Returns {1, headroom} reserved; {0, headroom} refused; {-1, 0} counters missing (Redis
# lost its data): the caller seeds them again from the database and retries.
RESERVE = """
local function held(holds, now)
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  local total = 0
  for _, member in ipairs(redis.call('ZRANGE', holds, 0, -1)) do
    total = total + tonumber(string.match(member, ':(%d+)$'))
  end
  return total
end
if redis.call('EXISTS', KEYS[5]) == 0 or redis.call('EXISTS', KEYS[6]) == 0 then
  return {-1, 0}
end
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[4])
local key_limit = tonumber(ARGV[5])
local credits = tonumber(ARGV[6])
local headroom = nil
if key_limit >= 0 then
  headroom = key_limit - tonumber(redis.call('GET', KEYS[2]) or '0') - held(KEYS[1], now)
end
if credits >= 0 then
  local left = credits - tonumber(redis.call('GET', KEYS[4]) or '0') - held(KEYS[3], now)
  if headroom == nil or left < headroom then headroom = left end
end
if headroom ~= nil and amount > headroom then return {0, headroom} end
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) - now)
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[2]) - now)
end
if headroom == nil then return {1, 0} end
return {1, headroom}
"""

# KEYS: key holds, account holds, key seeded flag, account seeded flag, account usage,
#       then the key's four usage counters (total, day, week, month)
# ARGV: member, cost, window_ttl_ms
SETTLE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local cost = tonumber(ARGV[2])
if cost > 0 then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('INCRBY', KEYS[6], cost)
    for i = 7, 9 do
      redis.call('INCRBY', KEYS[i], cost)
      redis.call('PEXPIRE', KEYS[i], ARGV[3])
    end
  end
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('INCRBY', KEYS[5], cost) end
end
return 1
"""

# KEYS: seeded flag, the running total, then windowed counters (which expire);
# ARGV: a value per counter, window_ttl_ms.
# The first replica to arrive seeds from the database; everyone after counts on from there.
SEED = """
if redis.call('SET', KEYS[1], '1', 'NX') then
  for i = 2, #KEYS do
    redis.call('SET', KEYS[i], ARGV[i - 1])
    if i > 2 then redis.call('PEXPIRE', KEYS[i], ARGV[#ARGV]) end
  end
  return 1
end
return 0
"""


_Settlement = tuple[Reservation, int, dt.datetime | None]


def to_nano_up(pico: int) -> int:
    return -(-pico // 1000)


def to_nano_down(pico: int) -> int:
    return pico // 1000


class SharedLedger(Ledger):
    def __init__(
        self,
        keys: KeyStore,
        shared: SharedRedis,
        refresh_seconds: float = 5.0,
        hold_seconds: float = 3600.0,
        batch_delay: float = 0.005,
    ) -> None:
        super().__init__(keys, refresh_seconds)
        self._shared = shared
        self._redis = shared.client
        self._reserve_script = self._redis.register_script(RESERVE)
        self._settle_script = self._redis.register_script(SETTLE)
        self._seed_script = self._redis.register_script(SEED)
        self._hold_ms = int(hold_seconds * 1000)
        self._seeded: set[str] = set()
        self._batch_delay = batch_delay
        self._outbox: list[_Settlement] = []  # settled here, on the way to Redis
        self._replay: list[_Settlement] = []  # held back while Redis was away
        self._flusher: asyncio.Task[None] | None = None

    # --- redis keys -----------------------------------------------------------------------

    def _key_counters(self, key_hash: str, periods: Periods) -> list[str]:
        k = self._shared.key
        return [
            k("k", key_hash, "u", "total"),
            k("k", key_hash, "u", f"d{periods.day}"),
            k("k", key_hash, "u", f"w{periods.week}"),
            k("k", key_hash, "u", f"m{periods.month}"),
        ]

    def _window_counter(self, key: KeyRecord, periods: Periods) -> str:
        total, day, week, month = self._key_counters(key.hash, periods)
        return {"daily": day, "weekly": week, "monthly": month}.get(key.limit_reset or "", total)

    # --- seeding --------------------------------------------------------------------------

    async def _seed(self, key: KeyRecord, balance: AccountBalance | None) -> None:
        """Copy the database's counters into Redis, once per key and account."""
        k = self._shared.key
        if key.hash not in self._seeded:
            usage = await self.key_usage(key)  # loaded from the database
            periods = Periods.now()
            daily, weekly, monthly = usage.current(periods)
            counters = self._key_counters(key.hash, periods)
            values = [to_nano_up(v) for v in (usage.total, daily, weekly, monthly)]
            await self._seed_script(
                keys=[k("k", key.hash, "seeded"), *counters], args=[*values, WINDOW_TTL_MS]
            )
            self._seeded.add(key.hash)
        account = f"account:{key.account_id}"
        if account not in self._seeded:
            used = balance.usage if balance is not None else 0
            await self._seed_script(
                keys=[k("a", key.account_id, "seeded"), k("a", key.account_id, "used")],
                args=[to_nano_up(used), WINDOW_TTL_MS],
            )
            self._seeded.add(account)

    # --- the ledger interface -------------------------------------------------------------

    async def _check(self, key: KeyRecord, amount: int, commit: bool) -> tuple[bool, int, str]:
        """Reserve ``amount`` (or only look, without ``commit``): (done, headroom, hold)."""
        balance = await self.balance(key.account_id)
        k = self._shared.key
        member = f"{secrets.token_hex(8)}:{to_nano_up(amount)}"
        key_limit = to_nano_down(key.limit_pico) if key.limit_pico is not None else NO_LIMIT
        credits = to_nano_down(balance.credits) if balance and balance.enforce else NO_LIMIT
        for _attempt in range(2):
            await self._seed(key, balance)
            now_ms = int(time.time() * 1000)
            status, headroom = await self._reserve_script(
                keys=[
                    k("k", key.hash, "holds"),
                    self._window_counter(key, Periods.now()),
                    k("a", key.account_id, "holds"),
                    k("a", key.account_id, "used"),
                    k("k", key.hash, "seeded"),
                    k("a", key.account_id, "seeded"),
                ],
                args=[
                    now_ms,
                    now_ms + self._hold_ms,
                    member,
                    to_nano_up(amount),
                    key_limit,
                    credits,
                    1 if commit else 0,
                ],
            )
            if int(status) >= 0:
                self._shared.succeeded()
                return int(status) == 1, int(headroom) * 1000, member
            # Redis lost the counters (restarted without persistence): seed them again.
            self._seeded.discard(key.hash)
            self._seeded.discard(f"account:{key.account_id}")
        raise ConnectionError("Redis keeps losing the usage counters")

    def _limited(self, key: KeyRecord, balance: AccountBalance | None) -> bool:
        return key.limit_pico is not None or (balance is not None and balance.enforce)

    async def available(self, key: KeyRecord) -> int | None:
        balance = await self.balance(key.account_id)
        if not self._limited(key, balance):
            return None
        if self._shared.usable():
            try:
                _ok, headroom, _member = await self._check(key, 0, commit=False)
                return headroom
            except REDIS_ERRORS as exc:
                self._shared.failed(exc)
        return await super().available(key)

    async def reserve(self, key: KeyRecord, amount: int, explain: str) -> Reservation:
        balance = await self.balance(key.account_id)
        if self._shared.usable() and self._limited(key, balance):
            try:
                ok, headroom, member = await self._check(key, amount, commit=True)
            except REDIS_ERRORS as exc:
                self._shared.failed(exc)
            else:
                if not ok:
                    available = {"available_usd": str(_usd(headroom))}
                    raise PaymentRequired(explain, metadata=available)
                return Reservation(key, amount, hold=member)
        return await super().reserve(key, amount, explain)

    def settle(self, reservation: Reservation, cost: int, at: dt.datetime | None = None) -> None:
        if reservation.hold is None:
            # Reserved in-process (no limit applied, or Redis was away): settle here, and
            # count the cost in Redis too so shared counters stay whole.
            super().settle(reservation, cost, at)
            if not cost:
                return
        elif reservation.settled:
            return
        else:
            reservation.settled = True
            self._count_locally(reservation.key, cost, at)
        self._outbox.append((reservation, cost, at))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    def _count_locally(self, key: KeyRecord, cost: int, at: dt.datetime | None) -> None:
        """Keep the in-process fallback's counters whole while Redis is the authority."""
        usage = self._usage.get(key.hash)
        if usage is not None and cost:
            usage.add(cost, Periods.at(at) if at else Periods.now())
        balance = self._accounts.get(key.account_id)
        if balance is not None:
            balance.usage += cost

    async def _flush_soon(self) -> None:
        # Settlements are batched: every one made within the delay reaches Redis in one
        # pipelined round trip (a round trip per request cost more CPU than everything
        # else Redis does for a request; bench/README.md). A hold lives that much longer,
        # which can only make the limit stricter for a few milliseconds.
        await asyncio.sleep(self._batch_delay)
        await self._flush()

    async def _flush(self) -> None:
        if not self._shared.usable():
            self._replay.extend(self._outbox)
            self._outbox.clear()
            return
        # Older settlements (held back by an outage) first, then the new ones.
        batch, self._replay, self._outbox = [*self._replay, *self._outbox], [], []
        if not batch:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for reservation, cost, at in batch:
                    await self._queue_settlement(pipe, reservation, cost, at)
                await pipe.execute()
            self._shared.succeeded()
        except REDIS_ERRORS as exc:
            self._shared.failed(exc)
            self._replay = [*batch, *self._replay]

    async def _queue_settlement(
        self, pipe: Any, reservation: Reservation, cost: int, at: dt.datetime | None
    ) -> None:
        key = reservation.key
        k = self._shared.key
        periods = Periods.at(at) if at else Periods.now()
        await self._settle_script(
            keys=[
                k("k", key.hash, "holds"),
                k("a", key.account_id, "holds"),
                k("k", key.hash, "seeded"),
                k("a", key.account_id, "seeded"),
                k("a", key.account_id, "used"),
                *self._key_counters(key.hash, periods),
            ],
            args=[reservation.hold or "", to_nano_up(cost), WINDOW_TTL_MS],
            client=pipe,
        )

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush()  # whatever is still waiting, Redis permitting
        if self._replay:
            log.warning(
                "%d settlements could not reach Redis before shutdown; the database has them",
                len(self._replay),
            )
