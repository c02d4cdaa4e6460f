"""Try a plan's candidates in order until one answers, before anything reaches the client.

Fallback happens only here and only before the first byte: a provider error from
``complete`` or ``open_stream`` moves on to the next candidate when it is retryable (timeouts,
connection failures, 429, 5xx); an error in the request itself (400, 413, 422) stops at once.
Every attempt is recorded for the generation record and routing metadata.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from switchyard.errors import NoEndpoint, UpstreamError
from switchyard.providers.base import ChunkStream, Provider
from switchyard.routing.plan import Candidate
from switchyard.wire.chat import ChatRequest, ChatResult


@dataclass(slots=True)
class AttemptRecord:
    endpoint: str
    provider: str
    status: int
    latency_ms: float
    error: str | None = None


@dataclass(slots=True)
class Execution:
    attempts: list[AttemptRecord] = field(default_factory=list)
    served_by: Candidate | None = None


class Executor:
    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = providers

    async def complete(
        self, request: ChatRequest, candidates: list[Candidate], execution: Execution
    ) -> ChatResult:
        last: UpstreamError | None = None
        for candidate in candidates:
            provider = self._providers[candidate.endpoint.provider]
            started = time.perf_counter()
            try:
                result = await provider.complete(request, candidate.endpoint)
            except UpstreamError as exc:
                _record(execution, candidate, provider, started, exc)
                last = exc
                if not exc.retryable:
                    raise
                continue
            _record(execution, candidate, provider, started, None)
            execution.served_by = candidate
            return result
        raise last or NoEndpoint("No endpoint could serve the request")

    async def open_stream(
        self, request: ChatRequest, candidates: list[Candidate], execution: Execution
    ) -> ChunkStream:
        last: UpstreamError | None = None
        for candidate in candidates:
            provider = self._providers[candidate.endpoint.provider]
            started = time.perf_counter()
            try:
                stream = await provider.open_stream(request, candidate.endpoint)
            except UpstreamError as exc:
                _record(execution, candidate, provider, started, exc)
                last = exc
                if not exc.retryable:
                    raise
                continue
            _record(execution, candidate, provider, started, None)
            execution.served_by = candidate
            return stream
        raise last or NoEndpoint("No endpoint could serve the request")


def _record(
    execution: Execution,
    candidate: Candidate,
    provider: Provider,
    started: float,
    error: UpstreamError | None,
) -> None:
    execution.attempts.append(
        AttemptRecord(
            endpoint=candidate.endpoint.key,
            provider=provider.spec.name,
            status=error.upstream_status or error.status if error else 200,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            error=error.message if error else None,
        )
    )
