"""Metering one generation: reserve before, settle and record after.

The chat service calls :meth:`Meter.reserve` once it knows which endpoints may serve, and
:meth:`Meter.settle` exactly once when the outcome is known, before the client is told it
is complete. Settling releases the reservation, counts the real cost (nothing for a request
that failed or produced nothing; what was generated for a cancelled stream) and journals
the generation record.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from switchyard.accounting.cost import affordable_output, cache_discount, max_cost
from switchyard.accounting.keys import KeyRecord
from switchyard.accounting.ledger import Ledger, Reservation
from switchyard.accounting.money import from_pico, to_pico
from switchyard.accounting.periods import Periods
from switchyard.accounting.records import GenerationRecord
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Endpoint
from switchyard.errors import PaymentRequired, RateLimited, SwitchyardError
from switchyard.execute import Execution
from switchyard.ratelimit import RateLimiter
from switchyard.routing.plan import Candidate
from switchyard.settings import RateLimitConfig
from switchyard.wire.chat import CompletionTokensDetails, PromptTokensDetails, Usage

log = logging.getLogger("switchyard.meter")


@dataclass(slots=True)
class CallContext:
    """Who asked, and the facts about the request that its record keeps."""

    key: KeyRecord
    generation_id: str
    streamed: bool
    http_referer: str | None = None
    app_title: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    first_token_at: float | None = None
    want_metadata: bool = False  # X-OpenRouter-Metadata: enabled
    rate_models: tuple[str, ...] = ()  # the model names rate limits count this call under
    # For traces: what kind of call (GenAI conventions: chat, embeddings) and the model as
    # the client named it (user input: never a metric label).
    operation: str = "chat"
    request_model: str | None = None


@dataclass(slots=True)
class Outcome:
    served: Candidate | None
    usage: Usage | None
    finish_reason: str | None
    native_finish_reason: str | None
    cancelled: bool = False
    images: int = 0


class MeterObserver(Protocol):
    """Told of every refusal and settlement (metrics, traces, logs). Must be cheap and must
    not raise; a failure is logged and never affects accounting."""

    def refused(self, ctx: CallContext, error: SwitchyardError) -> None: ...

    def settled(
        self,
        ctx: CallContext,
        execution: Execution,
        outcome: Outcome,
        record: GenerationRecord | None,
    ) -> None: ...


def output_cap(endpoint: Endpoint, requested: int | None, prompt_tokens: int) -> int:
    if requested is not None:
        return requested
    if endpoint.max_completion_tokens is not None:
        return endpoint.max_completion_tokens
    return max(endpoint.context_length - prompt_tokens, 0)


class Meter:
    def __init__(
        self,
        ledger: Ledger,
        writer: UsageWriter,
        limiter: RateLimiter | None = None,
        observer: MeterObserver | None = None,
    ) -> None:
        self.ledger = ledger
        self.writer = writer
        self.limiter = limiter or RateLimiter(RateLimitConfig())
        self.observer = observer

    async def reserve(
        self,
        ctx: CallContext,
        candidates: list[Candidate],
        prompt_tokens: dict[str, int],
        requested_output: int | None,
        images: int,
        models: Sequence[str] = (),
    ) -> Reservation:
        """Admit the call under the key's rate limits (``models``: the model names it asked
        for, for per-model limits; 429 if over), then hold the most the dearest candidate
        could cost (402 if that is not affordable)."""
        try:
            return await self._reserve(
                ctx, candidates, prompt_tokens, requested_output, images, models
            )
        except (RateLimited, PaymentRequired) as exc:
            self._tell_refused(ctx, exc)
            raise

    async def _reserve(
        self,
        ctx: CallContext,
        candidates: list[Candidate],
        prompt_tokens: dict[str, int],
        requested_output: int | None,
        images: int,
        models: Sequence[str],
    ) -> Reservation:
        ctx.rate_models = tuple(models)
        await self.limiter.admit(ctx.key.hash, ctx.rate_models)
        worst = Decimal(0)
        worst_candidate: Candidate | None = None
        for candidate in candidates:
            pricing = candidate.endpoint.pricing
            if pricing.is_free():
                continue
            prompt = prompt_tokens.get(candidate.model.id, 0)
            cap = output_cap(candidate.endpoint, requested_output, prompt)
            cost = max_cost(pricing, prompt, cap, images)
            if cost > worst:
                worst, worst_candidate = cost, candidate
        amount = to_pico(worst)
        if worst_candidate is None:
            return await self.ledger.reserve(ctx.key, 0, "")
        prompt = prompt_tokens.get(worst_candidate.model.id, 0)
        available = await self.ledger.available(ctx.key)
        # max_tokens must fit on every priced candidate, since any of them may serve.
        affordable = 0
        if available is not None:
            budget = from_pico(max(available, 0))
            affordable = min(
                affordable_output(
                    budget, c.endpoint.pricing, prompt_tokens.get(c.model.id, 0), images
                )
                for c in candidates
                if not c.endpoint.pricing.is_free()
            )
        cap = output_cap(worst_candidate.endpoint, requested_output, prompt)
        explain = (
            f"Insufficient credits: this request can cost up to ${worst} ({prompt} prompt "
            f"tokens and up to {cap} output tokens on {worst_candidate.endpoint.key}), and the "
            f"key can afford {affordable} output tokens. Lower max_tokens or add credits."
        )
        return await self.ledger.reserve(ctx.key, amount, explain)

    def settle(
        self, ctx: CallContext, reservation: Reservation, execution: Execution, outcome: Outcome
    ) -> GenerationRecord | None:
        """Charge, release and journal; returns the record (None if nothing was served)."""
        usage = outcome.usage
        served = outcome.served
        charged = usage is not None and served is not None and _billable(outcome)
        cost = to_pico(usage.cost) if charged and isinstance(usage.cost, Decimal) else 0  # type: ignore[union-attr]
        self.ledger.settle(reservation, cost, ctx.created_at)
        if usage is not None and served is not None and _billable(outcome):
            self.limiter.count_tokens(ctx.key.hash, ctx.rate_models, usage.total_tokens)
        if served is None:
            self._tell_settled(ctx, execution, outcome, None)
            return None
        now = time.perf_counter()
        prompt_details = usage.prompt_tokens_details if usage else None
        completion_details = usage.completion_tokens_details if usage else None
        record = GenerationRecord(
            id=ctx.generation_id,
            account_id=ctx.key.account_id,
            key_hash=ctx.key.hash,
            created_at=ctx.created_at.isoformat(timespec="milliseconds"),
            day=Periods.at(ctx.created_at).day,
            model=served.model.id,
            endpoint=served.endpoint.key,
            provider_name=execution.attempts[-1].provider if execution.attempts else None,
            streamed=ctx.streamed,
            cancelled=outcome.cancelled,
            finish_reason=outcome.finish_reason,
            native_finish_reason=outcome.native_finish_reason,
            latency_ms=round(((ctx.first_token_at or now) - ctx.started) * 1000, 2),
            generation_time_ms=round((now - ctx.started) * 1000, 2),
            tokens_prompt=usage.prompt_tokens if usage else 0,
            tokens_completion=usage.completion_tokens if usage else 0,
            native_tokens_cached=prompt_details.cached_tokens
            if isinstance(prompt_details, PromptTokensDetails)
            else 0,
            native_tokens_reasoning=completion_details.reasoning_tokens
            if isinstance(completion_details, CompletionTokensDetails)
            else 0,
            num_media_prompt=outcome.images,
            total_cost=cost,
            cache_discount=to_pico(cache_discount(usage, served.endpoint.pricing))
            if charged and usage
            else 0,
            http_referer=ctx.http_referer,
            app_title=ctx.app_title,
            user_id=ctx.user_id,
            session_id=ctx.session_id,
            provider_responses=[
                {
                    "endpoint": a.endpoint,
                    "provider_name": a.provider,
                    "status": a.status,
                    "latency": a.latency_ms,
                    **({"error": a.error} if a.error else {}),
                }
                for a in execution.attempts
            ],
        )
        self.writer.record(record)
        self._tell_settled(ctx, execution, outcome, record)
        return record

    def _tell_refused(self, ctx: CallContext, error: SwitchyardError) -> None:
        if self.observer is not None:
            try:
                self.observer.refused(ctx, error)
            except Exception:
                log.exception("meter observer failed on a refusal")

    def _tell_settled(
        self,
        ctx: CallContext,
        execution: Execution,
        outcome: Outcome,
        record: GenerationRecord | None,
    ) -> None:
        if self.observer is not None:
            try:
                self.observer.settled(ctx, execution, outcome, record)
            except Exception:
                log.exception("meter observer failed on generation %s", ctx.generation_id)


def _billable(outcome: Outcome) -> bool:
    """No charge for an error, or for nothing produced without a finish reason."""
    if outcome.finish_reason == "error":
        return False
    usage = outcome.usage
    return not (usage is not None and usage.completion_tokens == 0 and not outcome.finish_reason)
