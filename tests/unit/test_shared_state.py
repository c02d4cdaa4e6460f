"""Shared state in the real Redis on this machine: reservations, rate limits, breakers.

Each test uses its own key prefix, so tests never see each other's counters. "Replicas"
here are separate ledger / limiter / tracker objects sharing one Redis and one database,
exactly as separate processes would.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.shared_ledger import SharedLedger
from switchyard.errors import PaymentRequired, RateLimited
from switchyard.ratelimit import RateLimiter
from switchyard.routing.health import BreakerState, HealthTracker, Outcome
from switchyard.routing.shared_health import SharedBreakers
from switchyard.settings import RateLimit, RateLimitConfig
from switchyard.shared.redis import SharedRedis

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
USD = 10**12


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"sytest-{uuid.uuid4().hex[:10]}"
    yield name
    cleanup = SharedRedis(REDIS_URL)
    keys = [k async for k in cleanup.client.scan_iter(f"{name}:*")]
    if keys:
        await cleanup.client.delete(*keys)
    await cleanup.aclose()


def replicas(prefix: str, n: int, url: str = REDIS_URL) -> list[SharedRedis]:
    return [SharedRedis(url, prefix=prefix, retry_seconds=0.2) for _ in range(n)]


async def limited_key(keys: KeyStore, limit: str) -> KeyRecord:
    _, record = await keys.create_key(name="k", limit=Decimal(limit))
    return record


# --- reservations -------------------------------------------------------------------------


async def test_a_key_limit_holds_across_replicas(keys: KeyStore, prefix: str) -> None:
    key = await limited_key(keys, "1.00")
    ledgers = [SharedLedger(keys, shared) for shared in replicas(prefix, 3)]
    amount = 3 * USD // 10  # $0.30: three fit under $1, a fourth does not

    async def attempt(i: int) -> bool:
        try:
            await ledgers[i % 3].reserve(key, amount, "no")
        except PaymentRequired:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(12)))
    assert sum(results) == 3


async def test_settling_counts_usage_and_frees_the_hold(keys: KeyStore, prefix: str) -> None:
    key = await limited_key(keys, "1.00")
    first, second = (SharedLedger(keys, shared) for shared in replicas(prefix, 2))
    held = await first.reserve(key, 9 * USD // 10, "no")
    with pytest.raises(PaymentRequired):
        await second.reserve(key, 2 * USD // 10, "no")
    first.settle(held, USD // 2)  # the request cost $0.50 of the $0.90 held
    await first.aclose()  # waits for the settlement to reach Redis
    assert await second.available(key) == USD // 2
    await second.reserve(key, 4 * USD // 10, "no")
    with pytest.raises(PaymentRequired) as refused:
        await second.reserve(key, 2 * USD // 10, "no")
    assert refused.value.metadata == {"available_usd": "0.1"}


async def test_a_dead_replicas_hold_expires(keys: KeyStore, prefix: str) -> None:
    key = await limited_key(keys, "1.00")
    shared = replicas(prefix, 2)
    crashed = SharedLedger(keys, shared[0], hold_seconds=0.3)
    survivor = SharedLedger(keys, shared[1])
    await crashed.reserve(key, USD, "no")  # never settled: the replica "died"
    with pytest.raises(PaymentRequired):
        await survivor.reserve(key, USD // 10, "no")
    await asyncio.sleep(0.4)
    await survivor.reserve(key, USD // 10, "no")


async def test_usage_already_in_the_database_is_seeded(keys: KeyStore, db, prefix: str) -> None:  # type: ignore[no-untyped-def]
    key = await limited_key(keys, "1.00")
    await db.execute("UPDATE api_keys SET usage_total = ? WHERE hash = ?", 8 * USD // 10, key.hash)
    ledger = SharedLedger(keys, replicas(prefix, 1)[0])
    assert await ledger.available(key) == 2 * USD // 10


async def test_counters_lost_by_redis_are_seeded_again(keys: KeyStore, prefix: str) -> None:
    key = await limited_key(keys, "1.00")
    shared = replicas(prefix, 1)[0]
    ledger = SharedLedger(keys, shared)
    assert await ledger.available(key) == USD
    lost = [k async for k in shared.client.scan_iter(f"{prefix}:*")]
    await shared.client.delete(*lost)  # as if Redis restarted without persistence
    held = await ledger.reserve(key, USD, "no")
    assert held.hold is not None
    with pytest.raises(PaymentRequired):
        await ledger.reserve(key, USD // 10, "no")


async def test_large_balances_stay_exact(keys: KeyStore, prefix: str) -> None:
    account = "big"
    await keys.ensure_account(account, "Big", enforce_balance=True)
    await keys.add_credits(account, Decimal("250000"))
    _, key = await keys.create_key(name="k", account_id=account)
    ledger = SharedLedger(keys, replicas(prefix, 1)[0])
    assert await ledger.available(key) == 250_000 * USD
    await ledger.reserve(key, 250_000 * USD - 1000, "no")
    with pytest.raises(PaymentRequired):
        await ledger.reserve(key, 2000, "no")


async def test_without_redis_the_replica_keeps_serving_on_local_limits(
    keys: KeyStore, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = await limited_key(keys, "1.00")
    ledger = SharedLedger(keys, replicas(prefix, 1, DEAD_REDIS_URL)[0])
    with caplog.at_level(logging.ERROR, logger="switchyard.shared"):
        held = await ledger.reserve(key, 6 * USD // 10, "no")
        with pytest.raises(PaymentRequired):
            await ledger.reserve(key, 6 * USD // 10, "no")
    assert held.hold is None  # reserved in-process
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "unavailable" in errors[0].getMessage()


# --- rate limits --------------------------------------------------------------------------


async def test_a_request_rate_limit_is_global(prefix: str) -> None:
    config = RateLimitConfig(requests_per_minute=5)
    limiters = [RateLimiter(config, shared) for shared in replicas(prefix, 3)]

    async def attempt(i: int) -> bool:
        try:
            await limiters[i % 3].admit("key1", ["m"])
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(15)))
    assert sum(results) == 5
    with pytest.raises(RateLimited) as refused:
        await limiters[0].admit("key1", ["m"])
    headers = refused.value.headers
    assert headers["X-RateLimit-Limit"] == "5"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > time.time() * 1000
    assert 1 <= int(headers["Retry-After"]) <= 60
    await limiters[0].admit("another-key", ["m"])  # limits are per key


async def test_token_and_per_model_limits(prefix: str) -> None:
    config = RateLimitConfig(
        tokens_per_minute=100, models={"openai/gpt-4o:nitro": RateLimit(requests_per_minute=1)}
    )
    first, second = (RateLimiter(config, shared) for shared in replicas(prefix, 2))
    await first.admit("k", ["openai/gpt-4o:nitro"])
    with pytest.raises(RateLimited) as refused:
        await second.admit("k", ["openai/gpt-4o:nitro"])
    assert "openai/gpt-4o:nitro" in refused.value.message
    await second.admit("k", ["openai/gpt-4o"])  # the plain model is not limited
    first.count_tokens("k", ["openai/gpt-4o"], 150)
    await asyncio.sleep(0.1)  # the count is written in the background
    with pytest.raises(RateLimited) as refused:
        await second.admit("k", ["openai/gpt-4o"])
    assert "tokens per minute" in refused.value.message


async def test_rate_limits_fall_back_to_local_counts(prefix: str) -> None:
    limiter = RateLimiter(
        RateLimitConfig(requests_per_minute=2), replicas(prefix, 1, DEAD_REDIS_URL)[0]
    )
    await limiter.admit("k", [])
    await limiter.admit("k", [])
    with pytest.raises(RateLimited):
        await limiter.admit("k", [])


# --- circuit breakers ---------------------------------------------------------------------


async def test_an_endpoint_opened_on_one_replica_is_avoided_by_another(prefix: str) -> None:
    shared = replicas(prefix, 2)
    trackers = [HealthTracker(breaker_failures=2, breaker_cooldown=30) for _ in shared]
    breakers = [SharedBreakers(s, t, ["m@a", "m@b"]) for s, t in zip(shared, trackers, strict=True)]
    now = time.monotonic()
    for _ in range(2):
        trackers[0].record("m@a", Outcome.FAILURE, now)
    await asyncio.sleep(0.05)  # the open verdict is published in the background
    assert trackers[1].allow("m@a", now)  # not yet polled
    await breakers[1].poll()
    assert not trackers[1].allow("m@a", time.monotonic())
    assert trackers[1].snapshot("m@b", now).breaker is BreakerState.CLOSED

    # The first replica's probe succeeds later: the shared verdict is withdrawn.
    later = now + 31
    assert trackers[0].allow("m@a", later)
    trackers[0].record("m@a", Outcome.SUCCESS, later)
    await asyncio.sleep(0.05)
    assert await shared[0].client.exists(shared[0].key("open", "m@a")) == 0
    for b in breakers:
        await b.aclose()


async def test_settlements_made_together_reach_redis_in_one_round_trip(
    keys: KeyStore, prefix: str
) -> None:
    key = await limited_key(keys, "10.00")
    first, second = (SharedLedger(keys, shared) for shared in replicas(prefix, 2))
    holds = [await first.reserve(key, USD // 10, "no") for _ in range(20)]
    pipelines = 0
    real_pipeline = first._redis.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        nonlocal pipelines
        pipelines += 1
        return real_pipeline(*args, **kwargs)  # type: ignore[arg-type]

    first._redis.pipeline = counting_pipeline  # type: ignore[method-assign]
    for hold in holds:
        first.settle(hold, USD // 20)  # each held $0.10 and cost $0.05
    await first.aclose()
    assert pipelines == 1
    assert await second.available(key) == 10 * USD - 20 * (USD // 20)
