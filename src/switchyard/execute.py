"""Try a plan's candidates in order until one answers, before anything reaches the client.

Provider fallback: an error from ``complete`` or ``open_stream`` that another provider might
not have (timeouts, connection failures, 429, 5xx) moves on to the model's next endpoint. An
error in the request itself (400, 413, 422) skips the rest of that model's endpoints, since
they would refuse it too, but a ``models`` list still falls back to its next model: model
fallback happens on any error. Nothing is retried once the first byte has been sent.

Every attempt is recorded (for the generation record and routing metadata) and reported to
the health tracker, whose circuit breaker may skip an endpoint that keeps failing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from switchyard.catalog import Endpoint
from switchyard.errors import NoEndpoint, UpstreamError, UpstreamRateLimited
from switchyard.providers.base import ChunkStream, Provider
from switchyard.routing.health import HealthTracker, Outcome
from switchyard.routing.plan import Candidate
from switchyard.wire.chat import ChatRequest, ChatResult

T = TypeVar("T")


@dataclass(slots=True)
class AttemptRecord:
    endpoint: str
    provider: str
    model: str
    status: int
    latency_ms: float
    error: str | None = None


@dataclass(slots=True)
class Execution:
    attempts: list[AttemptRecord] = field(default_factory=list)
    served_by: Candidate | None = None
    skipped: list[str] = field(default_factory=list)  # endpoints whose breaker was open


class Executor:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        health: HealthTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._providers = providers
        self.health = health or HealthTracker()
        self._clock = clock

    async def complete(
        self, request: ChatRequest, candidates: list[Candidate], execution: Execution
    ) -> ChatResult:
        async def call(provider: Provider, endpoint: Endpoint) -> ChatResult:
            return await provider.complete(request, endpoint)

        return await self._first_success(candidates, execution, call)

    async def open_stream(
        self, request: ChatRequest, candidates: list[Candidate], execution: Execution
    ) -> ChunkStream:
        async def call(provider: Provider, endpoint: Endpoint) -> ChunkStream:
            return await provider.open_stream(request, endpoint)

        return await self._first_success(candidates, execution, call)

    async def _first_success(
        self,
        candidates: list[Candidate],
        execution: Execution,
        call: Callable[[Provider, Endpoint], Awaitable[T]],
    ) -> T:
        last: UpstreamError | None = None
        refused_models: set[str] = set()
        for candidate in candidates:
            endpoint = candidate.endpoint
            if candidate.model.id in refused_models:
                continue  # its other endpoints would refuse the same request
            if not self.health.allow(endpoint.key, self._clock()):
                execution.skipped.append(endpoint.key)
                continue
            provider = self._providers[endpoint.provider]
            started = self._clock()
            try:
                result = await call(provider, endpoint)
            except UpstreamError as exc:
                self._record(execution, candidate, provider, started, exc)
                last = exc
                if not exc.retryable:
                    refused_models.add(candidate.model.id)
                continue
            except BaseException:
                # Cancelled (the client left) or a provider bug: no verdict on the endpoint,
                # but a half-open breaker must not wait forever for this probe.
                self.health.release(endpoint.key)
                raise
            self._record(execution, candidate, provider, started, None)
            execution.served_by = candidate
            return result
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
        provider: Provider,
        started: float,
        error: UpstreamError | None,
    ) -> None:
        now = self._clock()
        if error is None:
            outcome = Outcome.SUCCESS
        elif isinstance(error, UpstreamRateLimited):
            outcome = Outcome.RATE_LIMITED
        elif error.retryable:
            outcome = Outcome.FAILURE
        else:
            outcome = None  # the request's fault, not the endpoint's
        if outcome is not None:
            self.health.record(candidate.endpoint.key, outcome, now)
        else:
            self.health.responded(candidate.endpoint.key, now)
        execution.attempts.append(
            AttemptRecord(
                endpoint=candidate.endpoint.key,
                provider=provider.spec.name,
                model=candidate.model.id,
                status=(error.upstream_status or error.status) if error else 200,
                latency_ms=round((now - started) * 1000, 2),
                error=error.message if error else None,
            )
        )

    def record_timing(
        self, endpoint: Endpoint, *, latency: float, output_tokens: int, duration: float
    ) -> None:
        """The served endpoint's timings: time to first token and output tokens per second."""
        self.health.sample(
            endpoint.key,
            self._clock(),
            latency=latency,
            output_tokens=output_tokens,
            duration=duration,
        )

    def record_broken_stream(self, endpoint: Endpoint) -> None:
        self.health.record(endpoint.key, Outcome.FAILURE, self._clock())
