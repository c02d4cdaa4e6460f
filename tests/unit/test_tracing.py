"""Generation spans: GenAI semantic-convention names and attributes, the caller's trace as
parent, errors marked, and tracing off unless configured."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from switchyard.accounting.cost import price_usage
from switchyard.accounting.keys import KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.meter import CallContext, Meter, Outcome
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Catalog, load_catalog
from switchyard.execute import AttemptRecord, Execution
from switchyard.observability import Metrics, Telemetry
from switchyard.observability.tracing import GenerationTracer, build_tracer, otlp_traces_url
from switchyard.routing.plan import Candidate
from switchyard.settings import ConfigError, Settings
from switchyard.storage.sqlite import SQLiteDatabase
from switchyard.wire.chat import CompletionTokensDetails, PromptTokensDetails, Usage

GPT4O = "openai/gpt-4o"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


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
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[GenerationTracer]:
    found = GenerationTracer(exporter, batch=False)
    yield found
    found.shutdown()


@pytest.fixture
def meter(keys: KeyStore, writer: UsageWriter, tracer: GenerationTracer) -> Meter:
    return Meter(Ledger(keys), writer, observer=Telemetry(Metrics(), tracer))


def candidate(catalog: Catalog, provider: str) -> Candidate:
    (endpoint,) = [e for e in catalog.endpoints_for(GPT4O) if e.provider == provider]
    return Candidate(catalog.models[GPT4O], endpoint)


async def test_a_generation_span_follows_the_genai_conventions(
    catalog: Catalog,
    keys: KeyStore,
    meter: Meter,
    tracer: GenerationTracer,
    exporter: InMemorySpanExporter,
) -> None:
    _, key = await keys.create_key(name="k")
    ctx = CallContext(key, "gen-abc", streamed=True, session_id="conv-1", request_model="gpt-4o")
    ctx.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    ctx.first_token_at = ctx.started + 0.25
    openai, azure = candidate(catalog, "openai"), candidate(catalog, "azure")
    execution = Execution(
        attempts=[
            AttemptRecord(openai.endpoint.key, "OpenAI", GPT4O, 503, 9.0, "down"),
            AttemptRecord(azure.endpoint.key, "Azure", GPT4O, 200, 20.0),
        ],
        served_by=azure,
    )
    usage = price_usage(
        Usage(
            prompt_tokens=50,
            completion_tokens=7,
            total_tokens=57,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=32),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=3),
        ),
        azure.endpoint.pricing,
    )
    headers = [(b"traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01".encode())]
    token = tracer.join_caller_trace(headers)
    try:
        reservation = await meter.reserve(ctx, [openai, azure], {GPT4O: 50}, 10, 0)
        meter.settle(ctx, reservation, execution, Outcome(azure, usage, "stop", "stop"))
    finally:
        assert token is not None
        tracer.leave(token)

    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == GPT4O
    assert attrs["gen_ai.response.id"] == "gen-abc"
    assert attrs["gen_ai.usage.input_tokens"] == 50
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 32
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 3
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.25)
    assert attrs["gen_ai.conversation.id"] == "conv-1"
    assert attrs["switchyard.cost_usd"] == str(usage.cost)
    assert "error.type" not in attrs
    assert span.status.status_code is StatusCode.UNSET
    # The span covers the request from its start, and joins the caller's trace.
    assert span.start_time is not None and span.end_time is not None
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(2, abs=0.5)
    assert span.context is not None and format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert [a["http.response.status_code"] for _, a in events] == [503, 200]
    assert events[0][1]["switchyard.endpoint"] == openai.endpoint.key


async def test_a_failed_generation_span_has_an_error_type(
    catalog: Catalog, keys: KeyStore, meter: Meter, exporter: InMemorySpanExporter
) -> None:
    _, key = await keys.create_key(name="k")
    ctx = CallContext(key, "gen-err", streamed=False, request_model=GPT4O)
    openai = candidate(catalog, "openai")
    execution = Execution(
        attempts=[AttemptRecord(openai.endpoint.key, "OpenAI", GPT4O, 429, 3.0, "busy")]
    )
    reservation = await meter.reserve(ctx, [openai], {GPT4O: 5}, 5, 0)
    meter.settle(ctx, reservation, execution, Outcome(None, None, "error", None))
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "429"
    assert span.status.status_code is StatusCode.ERROR
    assert span.parent is None  # no caller trace: a root span


async def test_an_embeddings_span_is_named_for_its_operation(
    catalog: Catalog, keys: KeyStore, meter: Meter, exporter: InMemorySpanExporter
) -> None:
    _, key = await keys.create_key(name="k")
    model = "openai/text-embedding-3-small"
    (endpoint,) = [e for e in catalog.endpoints_for(model) if e.provider == "openai"]
    served = Candidate(catalog.models[model], endpoint)
    ctx = CallContext(key, "gen-emb", False, operation="embeddings", request_model=model)
    usage = price_usage(Usage(9, 0, 9), endpoint.pricing)
    reservation = await meter.reserve(ctx, [served], {}, 0, 0)
    outcome = Outcome(served, usage, "stop", None)
    meter.settle(ctx, reservation, Execution(served_by=served), outcome)
    (span,) = exporter.get_finished_spans()
    assert span.name == f"embeddings {model}"
    assert dict(span.attributes or {})["gen_ai.operation.name"] == "embeddings"


def test_tracing_is_off_unless_an_endpoint_is_configured() -> None:
    settings = Settings()
    assert otlp_traces_url(settings, {}) is None
    assert build_tracer(settings, {}) is None
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert otlp_traces_url(settings, env) == "http://collector:4318/v1/traces"
    traces_env = {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/custom"}
    assert otlp_traces_url(settings, traces_env) == "http://other:4318/custom"
    configured = Settings(otlp_endpoint="http://mine:4318")
    assert otlp_traces_url(configured, traces_env) == "http://mine:4318/v1/traces"
    assert otlp_traces_url(configured, {"OTEL_SDK_DISABLED": "true"}) is None


def test_a_configured_endpoint_without_the_sdk_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import switchyard.observability.tracing as tracing

    monkeypatch.setattr(tracing, "tracing_available", lambda: False)
    with pytest.raises(ConfigError, match="otel"):
        build_tracer(Settings(otlp_endpoint="http://mine:4318"), {})
    # Set for the whole machine rather than for us: warn and serve without traces.
    assert build_tracer(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}) is None
