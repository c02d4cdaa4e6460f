"""Meter: reserve the worst case before a generation, charge and journal it after."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from switchyard.accounting.cost import max_cost, price_usage
from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.ledger import Ledger, Reservation
from switchyard.accounting.meter import CallContext, Meter, Outcome, output_cap
from switchyard.accounting.periods import Periods
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import PaymentRequired
from switchyard.execute import AttemptRecord, Execution
from switchyard.routing.plan import Candidate
from switchyard.storage.sqlite import SQLiteDatabase
from switchyard.wire.chat import CompletionTokensDetails, PromptTokensDetails, Usage

D = Decimal
USD = 10**12
GPT4O = "openai/gpt-4o"
TURBO = "openai/gpt-4-turbo"
MINI = "openai/gpt-4o-mini-2024-07-18"
LOCAL = "local/smollm2-135m-instruct"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
async def writer(db: SQLiteDatabase, tmp_path: Path) -> AsyncIterator[UsageWriter]:
    usage_writer = UsageWriter(db, tmp_path / "journal", flush_interval=3600)
    await usage_writer.start()
    yield usage_writer
    await usage_writer.aclose()


@pytest.fixture
def meter(keys: KeyStore, writer: UsageWriter) -> Meter:
    return Meter(Ledger(keys), writer)


def candidate(catalog: Catalog, model: str, provider: str = "openai") -> Candidate:
    (endpoint,) = [e for e in catalog.endpoints_for(model) if e.provider == provider]
    return Candidate(catalog.models[model], endpoint)


async def new_key(keys: KeyStore, limit: str | None = None) -> KeyRecord:
    _, record = await keys.create_key(name="k", limit=D(limit) if limit is not None else None)
    return record


def context(key: KeyRecord, generation_id: str = "gen-1", **kw: object) -> CallContext:
    return CallContext(key, generation_id, False, **kw)  # type: ignore[arg-type]


async def refused(
    meter: Meter,
    key: KeyRecord,
    candidates: list[Candidate],
    prompt: dict[str, int],
    requested: int | None,
    images: int = 0,
) -> PaymentRequired:
    with pytest.raises(PaymentRequired) as info:
        await meter.reserve(context(key), candidates, prompt, requested, images)
    assert info.value.status == 402
    return info.value


def stated_affordable(exc: PaymentRequired) -> int:
    match = re.search(r"the key can afford (\d+) output tokens", exc.message)
    assert match, exc.message
    return int(match.group(1))


async def fits(
    meter: Meter,
    key: KeyRecord,
    candidates: list[Candidate],
    prompt: dict[str, int],
    requested: int,
    images: int = 0,
) -> bool:
    try:
        reservation = await meter.reserve(context(key), candidates, prompt, requested, images)
    except PaymentRequired:
        return False
    meter.ledger.settle(reservation, 0)
    return True


# --- output_cap ------------------------------------------------------------------------------


def test_output_cap_prefers_the_request(catalog: Catalog) -> None:
    endpoint = candidate(catalog, GPT4O).endpoint
    assert endpoint.max_completion_tokens == 16_384
    assert output_cap(endpoint, 100, 1000) == 100
    assert output_cap(endpoint, 0, 1000) == 0
    assert output_cap(endpoint, 50_000, 1000) == 50_000


def test_output_cap_falls_back_to_endpoint_maximum(catalog: Catalog) -> None:
    assert output_cap(candidate(catalog, GPT4O).endpoint, None, 1000) == 16_384
    assert output_cap(candidate(catalog, TURBO).endpoint, None, 127_000) == 4096


def test_output_cap_without_maximum_is_the_rest_of_the_context(catalog: Catalog) -> None:
    endpoint: Endpoint = msgspec.structs.replace(
        candidate(catalog, GPT4O).endpoint, max_completion_tokens=None
    )
    assert output_cap(endpoint, None, 1000) == 127_000
    assert output_cap(endpoint, None, 128_000) == 0
    assert output_cap(endpoint, None, 200_000) == 0  # never negative
    assert output_cap(endpoint, 10, 1000) == 10


# --- reserving -------------------------------------------------------------------------------


async def test_reserves_worst_case_across_candidates(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="10")
    candidates = [candidate(catalog, TURBO), candidate(catalog, GPT4O)]
    prompt = {GPT4O: 1000, TURBO: 1200}
    # No max_tokens: each endpoint's own maximum output.
    #   gpt-4o:      1000 * 0.0000025 + 16384 * 0.00001 = 0.16634
    #   gpt-4-turbo: 1200 * 0.00001   +  4096 * 0.00003 = 0.13488
    reservation = await meter.reserve(context(key), candidates, prompt, None, 0)
    assert reservation.amount == 166_340_000_000
    assert await meter.ledger.available(key) == 10 * USD - 166_340_000_000
    # max_tokens=100: gpt-4o 0.0035, gpt-4-turbo 0.015.
    reservation = await meter.reserve(context(key), candidates, prompt, 100, 0)
    assert reservation.amount == 15_000_000_000


async def test_reservation_counts_images(catalog: Catalog, keys: KeyStore, meter: Meter) -> None:
    key = await new_key(keys)
    reservation = await meter.reserve(context(key), [candidate(catalog, GPT4O)], {GPT4O: 10}, 5, 2)
    # 10 * 0.0000025 + 2 * 0.003613 + 5 * 0.00001
    assert reservation.amount == 25_000_000 + 7_226_000_000 + 50_000_000


async def test_unlisted_prompt_counts_as_zero(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys)
    reservation = await meter.reserve(context(key), [candidate(catalog, GPT4O)], {}, 10, 0)
    assert reservation.amount == 100_000_000


async def test_free_candidates_reserve_nothing(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="0")
    free = candidate(catalog, LOCAL, "local")
    assert free.endpoint.pricing.is_free()
    reservation = await meter.reserve(context(key), [free], {LOCAL: 5000}, None, 0)
    assert reservation.amount == 0
    assert await meter.ledger.available(key) == 0


async def test_free_candidate_does_not_lower_the_reservation(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys)
    candidates = [candidate(catalog, LOCAL, "local"), candidate(catalog, GPT4O)]
    reservation = await meter.reserve(context(key), candidates, {GPT4O: 0}, 10, 0)
    assert reservation.amount == 100_000_000


async def test_402_states_the_request_and_its_price(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="0.01")
    exc = await refused(meter, key, [candidate(catalog, GPT4O)], {GPT4O: 1000}, None)
    assert "Insufficient credits" in exc.message
    assert "(1000 prompt tokens and up to 16384 output tokens on openai/gpt-4o@openai)" in (
        exc.message
    )
    cost = re.search(r"can cost up to \$([0-9.E+-]+) ", exc.message)
    assert cost and D(cost.group(1)) == D("0.16634")
    # (0.01 - 1000 * 0.0000025) / 0.00001 = 750
    assert stated_affordable(exc) == 750
    assert exc.metadata == {"available_usd": "0.01"}


@pytest.mark.parametrize(
    ("model", "limit", "prompt", "images"),
    [
        (GPT4O, "0.01", 1000, 0),
        (GPT4O, "0.0123456", 777, 1),
        (MINI, "0.001", 500, 0),
        (MINI, "0.0000333", 3, 0),
        (TURBO, "0.05", 1234, 2),
    ],
)
async def test_stated_affordable_output_is_exact(
    catalog: Catalog,
    keys: KeyStore,
    meter: Meter,
    model: str,
    limit: str,
    prompt: int,
    images: int,
) -> None:
    key = await new_key(keys, limit=limit)
    chosen = candidate(catalog, model)
    exc = await refused(meter, key, [chosen], {model: prompt}, None, images)
    affordable = stated_affordable(exc)
    assert affordable > 0
    pricing = chosen.endpoint.pricing
    assert max_cost(pricing, prompt, affordable, images) <= D(limit)
    assert max_cost(pricing, prompt, affordable + 1, images) > D(limit)
    candidates = [chosen]
    assert await fits(meter, key, candidates, {model: prompt}, affordable, images)
    assert not await fits(meter, key, candidates, {model: prompt}, affordable + 1, images)


async def test_affordable_is_zero_when_the_prompt_alone_is_too_dear(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="0.001")
    exc = await refused(meter, key, [candidate(catalog, TURBO)], {TURBO: 100}, 1)
    assert stated_affordable(exc) == 0  # 100 * 0.00001 is all of the $0.001


async def test_affordable_counts_what_is_already_held(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="0.01")
    held = await meter.reserve(context(key), [candidate(catalog, GPT4O)], {}, 500, 0)
    assert held.amount == 5 * USD // 1000
    exc = await refused(meter, key, [candidate(catalog, GPT4O)], {}, 501)
    assert stated_affordable(exc) == 500
    assert exc.metadata == {"available_usd": "0.005"}


async def test_stated_affordable_output_fits_every_candidate(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="0.05")
    candidates = [candidate(catalog, GPT4O), candidate(catalog, TURBO)]
    exc = await refused(meter, key, candidates, {}, None)
    affordable = stated_affordable(exc)
    assert await fits(meter, key, candidates, {}, affordable)


# --- settling --------------------------------------------------------------------------------


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning),
    )


def attempt(
    endpoint: Endpoint, status: int, latency_ms: float, error: str | None = None
) -> AttemptRecord:
    fields: dict[str, object] = {
        "endpoint": endpoint.key,
        "provider": endpoint.provider,
        "status": status,
        "latency_ms": latency_ms,
        "error": error,
    }
    if "model" in AttemptRecord.__dataclass_fields__:  # added by the routing work
        fields["model"] = endpoint.model
    return AttemptRecord(**fields)  # type: ignore[arg-type]


def execution(served: Candidate, catalog: Catalog) -> Execution:
    (azure,) = [e for e in catalog.endpoints_for(GPT4O) if e.provider == "azure"]
    return Execution(
        attempts=[
            attempt(azure, 503, 12.5, "Service Unavailable"),
            attempt(served.endpoint, 200, 80.25),
        ],
        served_by=served,
    )


async def reserve(meter: Meter, ctx: CallContext, served: Candidate) -> Reservation:
    return await meter.reserve(ctx, [served], {served.model.id: 1000}, 500, 0)


async def test_settle_charges_and_journals_the_generation(
    catalog: Catalog, keys: KeyStore, meter: Meter, writer: UsageWriter
) -> None:
    key = await new_key(keys, limit="1")
    served = candidate(catalog, GPT4O)
    created = dt.datetime(2024, 6, 9, 23, 59, 30, 123456, tzinfo=dt.UTC)
    ctx = CallContext(
        key,
        "gen-abc",
        True,
        http_referer="https://example.com",
        app_title="Example",
        user_id="user-7",
        session_id="session-9",
        created_at=created,
    )
    reservation = await reserve(meter, ctx, served)
    ctx.started = time.perf_counter() - 1.0
    ctx.first_token_at = ctx.started + 0.25
    used = price_usage(usage(1000, 200, cached=400, reasoning=50), served.endpoint.pricing)
    # 600 * 0.0000025 + 400 * 0.00000125 (cache read) + 200 * 0.00001
    assert used.cost == D("0.004")
    record = meter.settle(
        ctx,
        reservation,
        execution(served, catalog),
        Outcome(served, used, "stop", "end_turn", images=1),
    )
    assert record is not None
    assert writer.pending("gen-abc") is record
    assert (record.id, record.account_id, record.key_hash) == ("gen-abc", "default", key.hash)
    assert record.created_at == "2024-06-09T23:59:30.123+00:00"
    assert record.day == "2024-06-09"
    assert (record.model, record.endpoint) == (GPT4O, "openai/gpt-4o@openai")
    assert record.provider_name == "openai"  # the last attempt's
    assert (record.streamed, record.cancelled) == (True, False)
    assert (record.finish_reason, record.native_finish_reason) == ("stop", "end_turn")
    assert (record.tokens_prompt, record.tokens_completion) == (1000, 200)
    assert (record.native_tokens_cached, record.native_tokens_reasoning) == (400, 50)
    assert record.num_media_prompt == 1
    assert record.total_cost == 4_000_000_000
    assert record.cache_discount == 400 * 1_250_000  # 400 * (0.0000025 - 0.00000125)
    assert (record.http_referer, record.app_title) == ("https://example.com", "Example")
    assert (record.user_id, record.session_id) == ("user-7", "session-9")
    assert record.latency_ms == pytest.approx(250.0, abs=0.01)
    assert record.generation_time_ms is not None and record.generation_time_ms >= 1000
    assert record.provider_responses == [
        {
            "endpoint": "openai/gpt-4o@azure",
            "provider_name": "azure",
            "status": 503,
            "latency": 12.5,
            "error": "Service Unavailable",
        },
        {
            "endpoint": "openai/gpt-4o@openai",
            "provider_name": "openai",
            "status": 200,
            "latency": 80.25,
        },
    ]
    # The ledger counts the cost in the period the request started in.
    usage_now = await meter.ledger.key_usage(key)
    assert usage_now.total == 4_000_000_000 and usage_now.reserved == 0
    assert (usage_now.day, usage_now.week, usage_now.month) == (
        "2024-06-09",
        "2024-06-03",
        "2024-06",
    )
    assert reservation.settled


async def test_settle_without_cache_read_price_has_no_discount(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys)
    served = candidate(catalog, TURBO)
    assert served.endpoint.pricing.input_cache_read is None
    ctx = context(key)
    used = price_usage(usage(1000, 10, cached=600), served.endpoint.pricing)
    record = meter.settle(
        ctx,
        await reserve(meter, ctx, served),
        execution(served, catalog),
        Outcome(served, used, "stop", None),
    )
    assert record is not None
    assert record.cache_discount == 0
    assert record.total_cost == 1000 * 10_000_000 + 10 * 30_000_000


async def test_error_is_not_charged(catalog: Catalog, keys: KeyStore, meter: Meter) -> None:
    key = await new_key(keys, limit="1")
    served = candidate(catalog, GPT4O)
    ctx = context(key)
    reservation = await reserve(meter, ctx, served)
    used = price_usage(usage(1000, 200, cached=400), served.endpoint.pricing)
    record = meter.settle(
        ctx, reservation, execution(served, catalog), Outcome(served, used, "error", None)
    )
    assert record is not None
    assert (record.total_cost, record.cache_discount) == (0, 0)
    assert record.tokens_completion == 200
    assert (await meter.ledger.key_usage(key)).total == 0
    assert await meter.ledger.available(key) == USD


async def test_nothing_produced_without_finish_reason_is_not_charged(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="1")
    served = candidate(catalog, GPT4O)
    ctx = context(key)
    used = price_usage(usage(1000, 0), served.endpoint.pricing)
    assert used.cost == D("0.0025")  # the prompt alone has a price
    record = meter.settle(
        ctx,
        await reserve(meter, ctx, served),
        execution(served, catalog),
        Outcome(served, used, None, None),
    )
    assert record is not None and record.total_cost == 0
    assert await meter.ledger.available(key) == USD


async def test_empty_completion_with_finish_reason_is_charged(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="1")
    served = candidate(catalog, GPT4O)
    ctx = context(key)
    used = price_usage(usage(1000, 0), served.endpoint.pricing)
    record = meter.settle(
        ctx,
        await reserve(meter, ctx, served),
        execution(served, catalog),
        Outcome(served, used, "length", None),
    )
    assert record is not None and record.total_cost == 2_500_000_000
    assert await meter.ledger.available(key) == USD - 2_500_000_000


async def test_cancelled_stream_is_charged_for_what_was_generated(
    catalog: Catalog, keys: KeyStore, meter: Meter
) -> None:
    key = await new_key(keys, limit="1")
    served = candidate(catalog, GPT4O)
    ctx = context(key)
    used = price_usage(usage(1000, 30), served.endpoint.pricing)
    record = meter.settle(
        ctx,
        await reserve(meter, ctx, served),
        execution(served, catalog),
        Outcome(served, used, None, None, cancelled=True),
    )
    assert record is not None
    assert record.cancelled is True and record.finish_reason is None
    assert record.total_cost == 2_500_000_000 + 300_000_000
    assert (await meter.ledger.key_usage(key)).total == 2_800_000_000


async def test_nothing_served_releases_and_records_nothing(
    catalog: Catalog, keys: KeyStore, meter: Meter, writer: UsageWriter, tmp_path: Path
) -> None:
    key = await new_key(keys, limit="1")
    ctx = context(key)
    reservation = await reserve(meter, ctx, candidate(catalog, GPT4O))
    assert await meter.ledger.available(key) < USD
    assert meter.settle(ctx, reservation, Execution(), Outcome(None, None, "error", None)) is None
    assert reservation.settled
    assert await meter.ledger.available(key) == USD
    assert writer.pending("gen-1") is None
    journals = list((tmp_path / "journal").glob("*.journal"))
    assert journals and all(p.read_bytes() == b"" for p in journals)


async def test_settle_without_attempts(catalog: Catalog, keys: KeyStore, meter: Meter) -> None:
    key = await new_key(keys)
    served = candidate(catalog, LOCAL, "local")
    ctx = context(key)
    reservation = await meter.reserve(ctx, [served], {}, None, 0)
    used = price_usage(usage(12, 3), served.endpoint.pricing)
    record = meter.settle(ctx, reservation, Execution(), Outcome(served, used, "stop", None))
    assert record is not None
    assert record.provider_name is None and record.provider_responses == []
    assert record.total_cost == 0
    assert record.day == Periods.at(ctx.created_at).day
