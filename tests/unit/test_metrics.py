"""Prometheus metrics: what one settled generation, refusal, HTTP request and breaker record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchyard.accounting.cost import price_usage
from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.meter import CallContext, Meter, Outcome
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Catalog, load_catalog
from switchyard.errors import PaymentRequired, RateLimited
from switchyard.execute import AttemptRecord, Execution
from switchyard.observability import Metrics, Telemetry
from switchyard.routing.health import HealthTracker
from switchyard.routing.health import Outcome as Health
from switchyard.routing.plan import Candidate
from switchyard.storage.sqlite import SQLiteDatabase
from switchyard.wire.chat import CompletionTokensDetails, PromptTokensDetails, Usage

GPT4O = "openai/gpt-4o"


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
def metrics(catalog: Catalog) -> Metrics:
    found = Metrics()
    found.watch_endpoints(catalog.endpoints_for(GPT4O), HealthTracker())
    return found


@pytest.fixture
def meter(keys: KeyStore, writer: UsageWriter, metrics: Metrics) -> Meter:
    return Meter(Ledger(keys), writer, observer=Telemetry(metrics))


def candidate(catalog: Catalog, provider: str) -> Candidate:
    (endpoint,) = [e for e in catalog.endpoints_for(GPT4O) if e.provider == provider]
    return Candidate(catalog.models[GPT4O], endpoint)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def key(keys: KeyStore, limit: str | None = None) -> KeyRecord:
    _, record = await keys.create_key(name="k", limit=Decimal(limit) if limit else None)
    return record


def usage(catalog: Catalog, served: Candidate) -> Usage:
    raw = Usage(
        prompt_tokens=1200,
        completion_tokens=345,
        total_tokens=1545,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=1024),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=200),
    )
    return price_usage(raw, served.endpoint.pricing)


async def test_a_settled_generation_counts_tokens_cost_attempts_and_errors(
    catalog: Catalog, keys: KeyStore, meter: Meter, metrics: Metrics
) -> None:
    record_key = await key(keys)
    ctx = CallContext(record_key, "gen-1", streamed=True)
    openai, azure = candidate(catalog, "openai"), candidate(catalog, "azure")
    execution = Execution(
        attempts=[
            AttemptRecord(openai.endpoint.key, "OpenAI", GPT4O, 503, 12.0, "overloaded"),
            AttemptRecord(azure.endpoint.key, "Azure", GPT4O, 200, 30.0),
        ],
        served_by=azure,
    )
    ctx.first_token_at = ctx.started + 0.4
    reservation = await meter.reserve(ctx, [openai, azure], {GPT4O: 1200}, 400, 0)
    priced = usage(catalog, azure)
    record = meter.settle(ctx, reservation, execution, Outcome(azure, priced, "stop", "stop"))
    assert record is not None

    model = {"model": GPT4O, "provider": "azure"}
    assert value(metrics, "switchyard_generations_total", **model, finish_reason="stop") == 1
    assert value(metrics, "switchyard_tokens_total", **model, type="prompt") == 1200
    assert value(metrics, "switchyard_tokens_total", **model, type="completion") == 345
    assert value(metrics, "switchyard_tokens_total", **model, type="cached") == 1024
    assert value(metrics, "switchyard_tokens_total", **model, type="reasoning") == 200
    assert isinstance(priced.cost, Decimal) and priced.cost > 0
    assert value(metrics, "switchyard_cost_usd_total", **model) == float(priced.cost)
    assert value(metrics, "switchyard_time_to_first_token_seconds_count", **model) == 1
    first_token = value(metrics, "switchyard_time_to_first_token_seconds_sum", **model)
    assert first_token == pytest.approx(0.4)
    assert value(metrics, "switchyard_upstream_attempts_total", provider="openai") == 1
    assert value(metrics, "switchyard_upstream_attempts_total", provider="azure") == 1
    errors = "switchyard_upstream_errors_total"
    assert value(metrics, errors, provider="openai", status="503") == 1
    assert value(metrics, errors, provider="azure", status="200") == 0


async def test_a_failed_generation_counts_its_attempts_and_no_generation(
    catalog: Catalog, keys: KeyStore, meter: Meter, metrics: Metrics
) -> None:
    ctx = CallContext(await key(keys), "gen-2", streamed=False)
    openai = candidate(catalog, "openai")
    execution = Execution(
        attempts=[AttemptRecord(openai.endpoint.key, "OpenAI", GPT4O, 429, 5.0, "slow down")]
    )
    reservation = await meter.reserve(ctx, [openai], {GPT4O: 10}, 10, 0)
    assert meter.settle(ctx, reservation, execution, Outcome(None, None, "error", None)) is None
    assert value(metrics, "switchyard_upstream_errors_total", provider="openai", status="429") == 1
    families = {f.name for f in text_string_to_metric_families(metrics.render()[0].decode())}
    assert "switchyard_generations" in families
    assert (
        metrics.registry.get_sample_value(
            "switchyard_generations_total",
            {"model": GPT4O, "provider": "openai", "finish_reason": "error"},
        )
        is None
    )


async def test_finish_reasons_are_a_bounded_set(
    catalog: Catalog, keys: KeyStore, meter: Meter, metrics: Metrics
) -> None:
    record_key = await key(keys)
    openai = candidate(catalog, "openai")
    for number, (finish, cancelled) in enumerate(
        [("made_up_by_a_provider", False), (None, True), ("length", False)]
    ):
        ctx = CallContext(record_key, f"gen-{number}", streamed=True)
        execution = Execution(
            attempts=[AttemptRecord(openai.endpoint.key, "OpenAI", GPT4O, 200, 1.0)],
            served_by=openai,
        )
        reservation = await meter.reserve(ctx, [openai], {GPT4O: 10}, 10, 0)
        outcome = Outcome(openai, usage(catalog, openai), finish, None, cancelled=cancelled)
        meter.settle(ctx, reservation, execution, outcome)
    labels = {"model": GPT4O, "provider": "openai"}
    for finish in ("other", "cancelled", "length"):
        assert value(metrics, "switchyard_generations_total", **labels, finish_reason=finish) == 1


async def test_a_stream_that_breaks_midway_is_an_upstream_error(
    catalog: Catalog, keys: KeyStore, meter: Meter, metrics: Metrics
) -> None:
    ctx = CallContext(await key(keys), "gen-3", streamed=True)
    openai = candidate(catalog, "openai")
    execution = Execution(
        attempts=[AttemptRecord(openai.endpoint.key, "OpenAI", GPT4O, 200, 1.0)],
        served_by=openai,
    )
    reservation = await meter.reserve(ctx, [openai], {GPT4O: 10}, 10, 0)
    meter.settle(ctx, reservation, execution, Outcome(openai, None, "error", None))
    errors = "switchyard_upstream_errors_total"
    assert value(metrics, errors, provider="openai", status="mid_stream") == 1


async def test_refusals_count_by_reason(
    catalog: Catalog, keys: KeyStore, meter: Meter, metrics: Metrics
) -> None:
    poor = await key(keys, limit="0.000001")
    with pytest.raises(PaymentRequired):
        await meter.reserve(
            CallContext(poor, "gen-4", False), [candidate(catalog, "openai")], {GPT4O: 10}, 900, 0
        )
    assert value(metrics, "switchyard_requests_refused_total", reason="insufficient_credits") == 1
    Telemetry(metrics).refused(CallContext(poor, "gen-5", False), RateLimited("slow down"))
    assert value(metrics, "switchyard_requests_refused_total", reason="rate_limited") == 1


async def test_an_observer_that_fails_never_breaks_settlement(
    catalog: Catalog, keys: KeyStore, writer: UsageWriter
) -> None:
    class Broken:
        def refused(self, ctx: CallContext, error: Exception) -> None:
            raise RuntimeError("observer bug")

        def settled(self, *args: object) -> None:
            raise RuntimeError("observer bug")

    meter = Meter(Ledger(keys), writer, observer=Broken())  # type: ignore[arg-type]
    ctx = CallContext(await key(keys), "gen-6", streamed=False)
    openai = candidate(catalog, "openai")
    execution = Execution(served_by=openai)
    reservation = await meter.reserve(ctx, [openai], {GPT4O: 10}, 10, 0)
    record = meter.settle(
        ctx, reservation, execution, Outcome(openai, usage(catalog, openai), "stop", None)
    )
    assert record is not None and record.tokens_completion == 345


def test_http_requests_are_labelled_by_route_template_and_known_methods() -> None:
    metrics = Metrics()
    metrics.observe_http("/api/v1/keys/{hash}", "GET", 200, 0.003)
    metrics.observe_http("/api/v1/keys/{hash}", "GET", 200, 0.004)
    metrics.observe_http("unmatched", "BREW", 404, 0.001)
    labels = {"route": "/api/v1/keys/{hash}", "method": "GET"}
    assert value(metrics, "switchyard_http_requests_total", **labels, status="200") == 2
    assert value(metrics, "switchyard_http_request_duration_seconds_count", **labels) == 2
    assert value(metrics, "switchyard_http_request_duration_seconds_sum", **labels) == (
        pytest.approx(0.007)
    )
    other = {"route": "unmatched", "method": "OTHER", "status": "404"}
    assert value(metrics, "switchyard_http_requests_total", **other) == 1


def test_circuit_breaker_states_are_read_at_scrape_time(catalog: Catalog) -> None:
    now = [1000.0]
    health = HealthTracker(breaker_failures=2, breaker_cooldown=30)
    metrics = Metrics()
    endpoints = catalog.endpoints_for(GPT4O)
    metrics.watch_endpoints(endpoints, health, clock=lambda: now[0])
    (openai,) = [e for e in endpoints if e.provider == "openai"]

    def state(name: str) -> float:
        labels = {"endpoint": openai.key, "model": GPT4O, "provider": "openai", "state": name}
        return value(metrics, "switchyard_circuit_breaker_state", **labels)

    assert (state("closed"), state("open"), state("half_open")) == (1, 0, 0)
    health.record(openai.key, Health.FAILURE, now[0])
    health.record(openai.key, Health.FAILURE, now[0])
    assert (state("closed"), state("open"), state("half_open")) == (0, 1, 0)
    now[0] += 31
    assert (state("closed"), state("open"), state("half_open")) == (0, 0, 1)
    health.record(openai.key, Health.SUCCESS, now[0])
    assert (state("closed"), state("open"), state("half_open")) == (1, 0, 0)


def test_the_exposition_is_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe_http("/health", "GET", 200, 0.001)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"switchyard_http_requests", "process_cpu_seconds"} <= names
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


@pytest.mark.parametrize("enabled", [True, False])
async def test_generation_log_lines_come_with_the_access_log(
    catalog: Catalog,
    keys: KeyStore,
    writer: UsageWriter,
    caplog: pytest.LogCaptureFixture,
    enabled: bool,
) -> None:
    meter = Meter(Ledger(keys), writer, observer=Telemetry(Metrics(), log_generations=enabled))
    ctx = CallContext(await key(keys), "gen-logged", streamed=False)
    openai = candidate(catalog, "openai")
    reservation = await meter.reserve(ctx, [openai], {GPT4O: 10}, 10, 0)
    caplog.set_level("INFO", logger="switchyard.generations")
    outcome = Outcome(openai, usage(catalog, openai), "stop", None)
    meter.settle(ctx, reservation, Execution(served_by=openai), outcome)
    lines = [r for r in caplog.records if r.name == "switchyard.generations"]
    if not enabled:
        assert lines == []
        return
    (line,) = lines
    assert line.generation_id == "gen-logged"  # type: ignore[attr-defined]
    assert line.tokens_completion == 345  # type: ignore[attr-defined]
    assert "gen-logged" in line.getMessage() and GPT4O in line.getMessage()
