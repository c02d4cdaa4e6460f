"""The process's telemetry: metrics always, traces when configured, and the one observer the
meter tells about every refusal and settled generation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from switchyard.accounting.money import from_pico
from switchyard.errors import SwitchyardError
from switchyard.observability.metrics import Metrics
from switchyard.observability.request_context import current_request_id
from switchyard.observability.tracing import GenerationTracer, build_tracer
from switchyard.settings import Settings

if TYPE_CHECKING:
    from switchyard.accounting.meter import CallContext, Outcome
    from switchyard.accounting.records import GenerationRecord
    from switchyard.execute import Execution

generations_log = logging.getLogger("switchyard.generations")


class Telemetry:
    def __init__(
        self,
        metrics: Metrics,
        tracer: GenerationTracer | None = None,
        *,
        log_generations: bool = False,
    ) -> None:
        self.metrics = metrics
        self.tracer = tracer
        # A line per generation costs more than all the metrics of it together (Python
        # logging, a write per line), so it comes with the access log, not by default.
        self.log_generations = log_generations

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str]) -> Telemetry:
        tracer = build_tracer(settings, environ)
        return cls(Metrics(), tracer, log_generations=settings.access_log)

    # --- MeterObserver ---------------------------------------------------------------------

    def refused(self, ctx: CallContext, error: SwitchyardError) -> None:
        self.metrics.refused_by(error)

    def settled(
        self,
        ctx: CallContext,
        execution: Execution,
        outcome: Outcome,
        record: GenerationRecord | None,
    ) -> None:
        self.metrics.settled(ctx, execution, outcome, record)
        request_id = current_request_id()
        if self.tracer is not None:
            self.tracer.settled(ctx, execution, outcome, record, request_id)
        if self.log_generations and record is not None:
            _log_generation(record)

    def shutdown(self) -> None:
        self.metrics.close()
        if self.tracer is not None:
            self.tracer.shutdown()


def _log_generation(record: GenerationRecord) -> None:
    """One line per generation, joining the request id (stamped by the handler) to the
    generation id that /generation and the usage records know it by."""
    cost = from_pico(record.total_cost)
    generations_log.info(
        "generation %s: %s at %s, %d prompt + %d completion tokens, $%s, %s",
        record.id,
        record.model,
        record.endpoint,
        record.tokens_prompt,
        record.tokens_completion,
        cost,
        record.finish_reason or ("cancelled" if record.cancelled else "unfinished"),
        extra={
            "generation_id": record.id,
            "model": record.model,
            "endpoint": record.endpoint,
            "streamed": record.streamed,
            "finish_reason": record.finish_reason,
            "tokens_prompt": record.tokens_prompt,
            "tokens_completion": record.tokens_completion,
            "cost_usd": str(cost),
            "latency_ms": record.latency_ms,
            "generation_time_ms": record.generation_time_ms,
        },
    )
