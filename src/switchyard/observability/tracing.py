"""OpenTelemetry traces: one span per generation, named and attributed by the GenAI semantic
conventions (``gen_ai.*``), exported over OTLP/HTTP.

Off unless an OTLP endpoint is configured (``otlp_endpoint`` in the settings, or the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). When off
nothing here is imported and the request path pays one ``is None`` test. The OpenTelemetry
SDK and exporter are the optional ``otel`` extra.

The span is made when the generation settles, with the start time of the request: the
meter's settlement is the one place that knows everything a span carries (which endpoint
served, usage, finish reason, every upstream attempt), for streams and plain responses
alike. Its parent is the caller's trace when the request carried a W3C ``traceparent``.
Export runs in the SDK's batch thread, off the event loop.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from switchyard.accounting.money import from_pico
from switchyard.providers.semconv import genai_provider_name
from switchyard.settings import ConfigError, Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

    from switchyard.accounting.meter import CallContext, Outcome
    from switchyard.accounting.records import GenerationRecord
    from switchyard.execute import Execution

log = logging.getLogger("switchyard.tracing")

ENV_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACES_PATH = "/v1/traces"
INSTRUMENTATION = "switchyard"


def otlp_traces_url(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """Where spans go, or None when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.otlp_endpoint:
        return settings.otlp_endpoint.rstrip("/") + TRACES_PATH
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]  # a full URL, as the spec says
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + TRACES_PATH
    return None


def tracing_available() -> bool:
    return (
        importlib.util.find_spec("opentelemetry.sdk") is not None
        and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
    )


class GenerationTracer:
    """Makes the generation spans; built by :meth:`otlp` or, in tests, on any exporter."""

    def __init__(self, exporter: SpanExporter, *, batch: bool = True) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still apply on top of this default.
        resource = Resource.create({"service.name": INSTRUMENTATION})
        self._provider: TracerProvider = TracerProvider(resource=resource)
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self._provider.add_span_processor(processor)
        self._tracer: Tracer = self._provider.get_tracer(INSTRUMENTATION)
        from opentelemetry import context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._context = context
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def otlp(cls, url: str) -> GenerationTracer:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(OTLPSpanExporter(endpoint=url))

    def join_caller_trace(self, headers: Iterable[tuple[bytes, bytes]]) -> object | None:
        """Make the caller's W3C trace context (``traceparent`` / ``tracestate`` headers)
        current, so spans of this request join its trace; a token for :meth:`leave`."""
        carrier: dict[str, str] = {}
        for name, value in headers:
            if name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        if not carrier:
            return None
        parent: Context = self._propagator.extract(carrier)
        return self._context.attach(parent)

    def leave(self, token: object) -> None:
        self._context.detach(token)  # type: ignore[arg-type]

    def settled(
        self,
        ctx: CallContext,
        execution: Execution,
        outcome: Outcome,
        record: GenerationRecord | None,
        request_id: str | None,
    ) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attributes = _attributes(ctx, execution, outcome, record, request_id)
        request_model = attributes.get("gen_ai.request.model", "")
        start = int(ctx.created_at.timestamp() * 1e9)
        span = self._tracer.start_span(
            f"{ctx.operation} {request_model}".strip(),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        for attempt in execution.attempts:
            span.add_event(
                "switchyard.upstream_attempt",
                {
                    "switchyard.endpoint": attempt.endpoint,
                    "switchyard.provider": attempt.provider,
                    "http.response.status_code": attempt.status,
                    "switchyard.latency_ms": attempt.latency_ms,
                },
            )
        error = attributes.get("error.type")
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end(end_time=time.time_ns())

    def shutdown(self) -> None:
        """Flush what is batched and stop the export thread."""
        self._provider.shutdown()


def _attributes(
    ctx: CallContext,
    execution: Execution,
    outcome: Outcome,
    record: GenerationRecord | None,
    request_id: str | None,
) -> dict[str, Any]:
    served = outcome.served
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": ctx.operation,
        "gen_ai.response.id": ctx.generation_id,
        "gen_ai.request.stream": ctx.streamed,
    }
    if served is not None:
        attrs["gen_ai.provider.name"] = genai_provider_name(served.endpoint.provider)
        attrs["gen_ai.response.model"] = served.model.id
        attrs["switchyard.endpoint"] = served.endpoint.key
    requested = ctx.request_model or (served.model.id if served is not None else None)
    if requested:
        attrs["gen_ai.request.model"] = requested
    if ctx.session_id:
        attrs["gen_ai.conversation.id"] = ctx.session_id
    if request_id:
        attrs["switchyard.request_id"] = request_id
    if record is not None:
        attrs["gen_ai.usage.input_tokens"] = record.tokens_prompt
        attrs["gen_ai.usage.output_tokens"] = record.tokens_completion
        if record.native_tokens_cached:
            attrs["gen_ai.usage.cache_read.input_tokens"] = record.native_tokens_cached
        if record.native_tokens_reasoning:
            attrs["gen_ai.usage.reasoning.output_tokens"] = record.native_tokens_reasoning
        # A decimal string: span attributes have no decimal type and money is never a float.
        attrs["switchyard.cost_usd"] = str(from_pico(record.total_cost))
    if outcome.finish_reason is not None:
        attrs["gen_ai.response.finish_reasons"] = [outcome.finish_reason]
    if ctx.streamed and ctx.first_token_at is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = round(ctx.first_token_at - ctx.started, 6)
    if outcome.cancelled:
        attrs["switchyard.cancelled"] = True
    error = _error_type(execution, outcome)
    if error is not None:
        attrs["error.type"] = error
    return attrs


def _error_type(execution: Execution, outcome: Outcome) -> str | None:
    if outcome.served is not None and outcome.finish_reason != "error":
        return None
    failed = [a for a in execution.attempts if a.status != 200]
    if outcome.served is not None:
        return "mid_stream"  # served, then failed inside the answer
    if failed:
        return str(failed[-1].status)  # the status the client was given
    return "no_endpoint" if execution.skipped else "_OTHER"


def build_tracer(settings: Settings, environ: Mapping[str, str]) -> GenerationTracer | None:
    url = otlp_traces_url(settings, environ)
    if url is None:
        return None
    if not tracing_available():
        message = (
            "tracing needs the OpenTelemetry SDK and OTLP exporter: pip install 'switchyard[otel]'"
        )
        if settings.otlp_endpoint:
            raise ConfigError(f"otlp_endpoint is set, but {message}")
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set, but %s; traces are off", message)
        return None
    log.info("tracing: generation spans exported to %s", url)
    return GenerationTracer.otlp(url)
