"""The embeddings service: plan, meter, embed with fallback, and shape the response.

Like :mod:`switchyard.completions` for chat: handlers decode and authenticate, this module
does the rest. Planning is pure (:func:`plan_embeddings`): it resolves the model, keeps the
endpoints of configured providers that can take the request (token arrays, ``dimensions``,
provider preferences) and orders them cheapest first, endpoints failing right now last,
with ``provider.order`` and ``allow_fallbacks`` applied. Execution tries them in turn and
moves on after a retryable upstream error; a request the upstream refused as malformed is
not retried elsewhere. Every request is reserved and settled through the meter, so key
limits and credits apply and a generation record is written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from msgspec import UNSET

from switchyard import tokens
from switchyard.accounting.cost import price_usage
from switchyard.accounting.ledger import Reservation
from switchyard.accounting.meter import CallContext, Meter, Outcome
from switchyard.accounting.usage import normalise_usage
from switchyard.catalog import Catalog, Endpoint, ModelSpec
from switchyard.errors import (
    InvalidRequest,
    NoEndpoint,
    NotFound,
    UpstreamError,
    UpstreamRateLimited,
)
from switchyard.execute import AttemptRecord, Execution
from switchyard.providers.base import Embedder
from switchyard.routing.filters import PriceCaps, matches
from switchyard.routing.health import UNKNOWN, EndpointHealth, HealthTracker
from switchyard.routing.health import Outcome as HealthOutcome
from switchyard.routing.plan import Candidate
from switchyard.wire.chat import MaxPrice, ProviderPreferences, Usage
from switchyard.wire.embeddings import (
    Embedded,
    Embedding,
    EmbeddingJob,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbeddingsUsage,
    encode_vector,
    parse_input,
)

# Counting the tokens of this many input bytes moves to a worker thread.
_COUNT_OFF_LOOP_BYTES = 256 * 1024
_NO_PREFS = ProviderPreferences()
# What the meter's generation record calls a request that produced its result. (The meter
# charges nothing for "no output and no finish reason", which is every embedding.)
_FINISHED = "stop"


def embeds(model: ModelSpec) -> bool:
    return "embeddings" in model.architecture.output_modalities


@dataclass(slots=True)
class EmbeddingsPlan:
    model: ModelSpec
    job: EmbeddingJob
    candidates: list[Candidate]
    excluded: dict[str, str] = field(default_factory=dict)
    body_size: int = 0


def to_job(request: EmbeddingsRequest) -> EmbeddingJob:
    texts, arrays = parse_input(request.input)
    return EmbeddingJob(
        texts=texts,
        token_arrays=arrays,
        dimensions=request.dimensions if isinstance(request.dimensions, int) else None,
        input_type=request.input_type if isinstance(request.input_type, str) else None,
        user=request.user if isinstance(request.user, str) else None,
    )


def plan_embeddings(
    request: EmbeddingsRequest,
    job: EmbeddingJob,
    catalog: Catalog,
    available: Collection[str],
    takes_token_arrays: Callable[[str], bool],
    health: Mapping[str, EndpointHealth] | None = None,
) -> EmbeddingsPlan:
    """The endpoints to try, in order. ``available``: providers with a working embedder."""
    model = catalog.model(request.model)
    if model is None:
        raise InvalidRequest(f"{request.model} is not a valid model ID", field="model")
    if not embeds(model):
        raise InvalidRequest(
            f"{model.id} does not produce embeddings; use /chat/completions for it",
            field="model",
        )
    prefs = request.provider if isinstance(request.provider, ProviderPreferences) else _NO_PREFS
    health = health or {}
    result = EmbeddingsPlan(model, job, [])
    why = _endpoint_filter(job, prefs, catalog, available, takes_token_arrays)
    kept: list[Endpoint] = []
    for endpoint in catalog.endpoints_for(model.id):
        reason = why(endpoint)
        if reason is None:
            kept.append(endpoint)
        else:
            result.excluded[endpoint.key] = reason
    if not kept:
        raise _nothing_serves(model, result.excluded)
    ranked = _arrange(kept, prefs, catalog, health)
    if not ranked:
        raise NotFound(
            "No endpoint in `provider.order` can serve this request, and `allow_fallbacks` "
            "is false",
            metadata={"excluded": result.excluded, "order": prefs.order},
        )
    result.candidates = [Candidate(model, e) for e in ranked]
    return result


def _endpoint_filter(
    job: EmbeddingJob,
    prefs: ProviderPreferences,
    catalog: Catalog,
    available: Collection[str],
    takes_token_arrays: Callable[[str], bool],
) -> Callable[[Endpoint], str | None]:
    only = prefs.only if isinstance(prefs.only, list) else None
    ignore = prefs.ignore if isinstance(prefs.ignore, list) else None
    quantizations = set(prefs.quantizations) if isinstance(prefs.quantizations, list) else None
    caps = PriceCaps.parse(prefs.max_price) if isinstance(prefs.max_price, MaxPrice) else None

    def why(endpoint: Endpoint) -> str | None:
        provider = catalog.providers[endpoint.provider]
        if endpoint.provider not in available:
            return "provider_not_configured"
        if only is not None and not matches(endpoint, catalog, only):
            return "provider.only"
        if ignore is not None and matches(endpoint, catalog, ignore):
            return "provider.ignore"
        if quantizations is not None and endpoint.quantization not in quantizations:
            return "quantizations"
        if prefs.data_collection == "deny" and provider.data_policy.training:
            return "data_collection"
        if prefs.zdr is True and provider.data_policy.retains_prompts:
            return "zdr"
        if caps is not None and not caps.allows(endpoint):
            return "max_price"
        if job.token_arrays is not None and not takes_token_arrays(endpoint.provider):
            return "token_arrays"
        if job.dimensions is not None and "dimensions" not in catalog.endpoint_parameters(endpoint):
            return "dimensions"
        return None

    return why


def _arrange(
    endpoints: list[Endpoint],
    prefs: ProviderPreferences,
    catalog: Catalog,
    health: Mapping[str, EndpointHealth],
) -> list[Endpoint]:
    """Cheapest first, failing ones last; then ``order`` and ``allow_fallbacks``."""
    ranked = sorted(
        endpoints,
        key=lambda e: (health.get(e.key, UNKNOWN).recently_failing, e.pricing.prompt),
    )
    order = prefs.order if isinstance(prefs.order, list) and prefs.order else None
    if order is not None:
        front: list[Endpoint] = []
        for name in order:
            front.extend(e for e in ranked if e not in front and matches(e, catalog, [name]))
        rest = [e for e in ranked if e not in front]
        return front if prefs.allow_fallbacks is False else front + rest
    if prefs.allow_fallbacks is False:
        return ranked[:1]
    return ranked


def _nothing_serves(model: ModelSpec, excluded: dict[str, str]) -> Exception:
    metadata = {"excluded": excluded}
    # Unconfigured providers explain nothing the user can change when something else does.
    reasons = set(excluded.values()) - {"provider_not_configured"} or set(excluded.values())
    if reasons == {"dimensions"}:
        return InvalidRequest(
            f"{model.id} does not support `dimensions`; leave it out to get the model's own "
            "vector size",
            field="dimensions",
            metadata=metadata,
        )
    if reasons == {"token_arrays"}:
        return InvalidRequest(
            f"No endpoint serving {model.id} accepts token arrays as `input`; send text",
            field="input",
            metadata=metadata,
        )
    if reasons == {"provider_not_configured"} or not reasons:
        return NoEndpoint(
            f"No provider is configured for {model.id}; set its credentials to enable it",
            metadata=metadata,
        )
    listed = ", ".join(sorted(reasons))
    return NotFound(
        f"No endpoints found for {model.id} that match the request; excluded by: {listed}",
        metadata=metadata,
    )


def count_tokens(job: EmbeddingJob, encoding: str) -> int:
    if job.token_arrays is not None:
        return sum(len(a) for a in job.token_arrays)
    return sum(tokens.count_text(t, encoding) for t in job.texts or ())


class EmbeddingsService:
    def __init__(
        self,
        catalog: Catalog,
        embedders: Mapping[str, Embedder],
        meter: Meter,
        health: HealthTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._embedders = embedders
        self._meter = meter
        self.health = health or HealthTracker()
        self._clock = clock

    def prepare(self, request: EmbeddingsRequest, body_size: int = 0) -> EmbeddingsPlan:
        job = to_job(request)
        now = self._clock()
        model = self._catalog.model(request.model)
        snapshot = {
            e.key: self.health.snapshot(e.key, now)
            for e in (self._catalog.endpoints_for(model.id) if model else ())
        }
        chosen = plan_embeddings(
            request,
            job,
            self._catalog,
            self._embedders.keys(),
            lambda slug: self._embedders[slug].accepts_token_arrays,
            snapshot,
        )
        chosen.body_size = body_size
        return chosen

    async def embed(
        self, request: EmbeddingsRequest, prep: EmbeddingsPlan, ctx: CallContext
    ) -> EmbeddingsResponse:
        reservation = await self._reserve(ctx, prep)
        execution = Execution()
        try:
            embedded = await self._first_success(prep, execution)
        except BaseException:
            self._meter.settle(ctx, reservation, execution, Outcome(None, None, "error", None))
            raise
        ctx.first_token_at = time.perf_counter()
        served = execution.served_by
        assert served is not None
        prompt_tokens = embedded.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = await self._count(prep, served.model.encoding)
        usage = price_usage(
            normalise_usage(Usage(prompt_tokens, 0, prompt_tokens)), served.endpoint.pricing
        )
        self.health.sample(
            served.endpoint.key, self._clock(), latency=ctx.first_token_at - ctx.started
        )
        self._meter.settle(ctx, reservation, execution, Outcome(served, usage, _FINISHED, None))
        return EmbeddingsResponse(
            id=ctx.generation_id,
            model=served.model.id,
            provider=self._catalog.providers[served.endpoint.provider].name,
            data=[
                Embedding(embedding=encode_vector(vector, request.encoding_format), index=i)
                for i, vector in enumerate(embedded.vectors)
            ],
            usage=EmbeddingsUsage(
                prompt_tokens=prompt_tokens,
                total_tokens=prompt_tokens,
                cost=usage.cost if isinstance(usage.cost, Decimal) else UNSET,
                is_byok=False,
                cost_details=usage.cost_details,
            ),
        )

    async def _reserve(self, ctx: CallContext, prep: EmbeddingsPlan) -> Reservation:
        counted: dict[str, int] = {}
        priced = [c for c in prep.candidates if not c.endpoint.pricing.is_free()]
        # Only a key with a limit needs the exact size of the input up front.
        if priced and await self._meter.ledger.available(ctx.key) is not None:
            model = prep.model
            if model.encoding != "native":
                counted[model.id] = await self._count(prep, model.encoding)
        return await self._meter.reserve(ctx, prep.candidates, counted, 0, 0)

    async def _count(self, prep: EmbeddingsPlan, encoding: str) -> int:
        if encoding == "native":
            return 0  # only the serving runtime knows, and it always reports
        if prep.body_size > _COUNT_OFF_LOOP_BYTES:
            return await asyncio.to_thread(count_tokens, prep.job, encoding)
        return count_tokens(prep.job, encoding)

    async def _first_success(self, prep: EmbeddingsPlan, execution: Execution) -> Embedded:
        last: UpstreamError | None = None
        for candidate in prep.candidates:
            endpoint = candidate.endpoint
            if not self.health.allow(endpoint.key, self._clock()):
                execution.skipped.append(endpoint.key)
                continue
            embedder = self._embedders[endpoint.provider]
            started = self._clock()
            try:
                embedded = await embedder.embed(prep.job, endpoint)
            except UpstreamError as exc:
                self._record(execution, candidate, embedder, started, exc)
                if not exc.retryable:
                    raise  # the request's fault: every endpoint of the model would refuse it
                last = exc
                continue
            except BaseException:
                self.health.release(endpoint.key)
                raise
            if len(embedded.vectors) != len(prep.job):
                wrong = UpstreamError(
                    f"{embedder.spec.name} returned {len(embedded.vectors)} embeddings for "
                    f"{len(prep.job)} inputs",
                    provider=embedder.spec.name,
                )
                self._record(execution, candidate, embedder, started, wrong)
                last = wrong
                continue
            self._record(execution, candidate, embedder, started, None)
            execution.served_by = candidate
            return embedded
        if last is not None:
            raise last
        raise NoEndpoint(
            "Every endpoint that could serve this request is failing and paused by its circuit "
            "breaker; try again shortly",
            metadata={"circuit_open": execution.skipped},
            headers={"Retry-After": "5"},
        )

    def _record(
        self,
        execution: Execution,
        candidate: Candidate,
        embedder: Embedder,
        started: float,
        error: UpstreamError | None,
    ) -> None:
        now = self._clock()
        key = candidate.endpoint.key
        if error is None:
            self.health.record(key, HealthOutcome.SUCCESS, now)
        elif isinstance(error, UpstreamRateLimited):
            self.health.record(key, HealthOutcome.RATE_LIMITED, now)
        elif error.retryable:
            self.health.record(key, HealthOutcome.FAILURE, now)
        else:
            self.health.responded(key, now)
        execution.attempts.append(
            AttemptRecord(
                endpoint=key,
                provider=embedder.spec.name,
                model=candidate.model.id,
                status=(error.upstream_status or error.status) if error else 200,
                latency_ms=round((now - started) * 1000, 2),
                error=error.message if error else None,
            )
        )
