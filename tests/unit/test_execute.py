"""Executor: provider and model fallback, attempt records, health reporting, circuit breaker."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from switchyard.catalog import Endpoint, ModelSpec, Pricing, ProviderSpec
from switchyard.catalog.schema import Architecture
from switchyard.errors import (
    NoEndpoint,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.execute import Execution, Executor
from switchyard.providers.base import ChunkStream
from switchyard.routing.health import BreakerState, HealthTracker, Outcome
from switchyard.routing.plan import Candidate
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult, UserMessage

ONE = "acme/one"
TWO = "acme/two"
STEP = 0.25  # seconds each upstream call takes on the fake clock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stream:
    def __init__(self, key: str) -> None:
        self.key = key

    async def _empty(self) -> AsyncIterator[ChatChunk]:
        chunks: list[ChatChunk] = []
        for chunk in chunks:
            yield chunk

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self._empty()

    async def aclose(self) -> None:
        pass


class Upstream:
    """What each endpoint does when called: raise the scripted error, else answer."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.errors: dict[str, list[BaseException]] = {}
        self.calls: list[str] = []

    def fail(self, key: str, *errors: BaseException) -> None:
        self.errors.setdefault(key, []).extend(errors)

    def answer(self, endpoint: Endpoint) -> None:
        self.calls.append(endpoint.key)
        self.clock.now += STEP
        pending = self.errors.get(endpoint.key)
        if pending:
            raise pending.pop(0)


class FakeProvider:
    def __init__(self, slug: str, upstream: Upstream) -> None:
        self.spec = ProviderSpec(slug=slug, name=f"Provider {slug.upper()}", protocol="openai")
        self.upstream = upstream

    def start(self) -> None:
        pass

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        self.upstream.answer(endpoint)
        return ChatResult(id=f"r-{endpoint.key}", created=0, model=endpoint.model, choices=[])

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> ChunkStream:
        self.upstream.answer(endpoint)
        return Stream(endpoint.key)

    def stats(self) -> dict[str, int]:
        return {}

    async def aclose(self) -> None:
        pass


def _model(model_id: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        name=model_id,
        created=dt.date(2024, 1, 1),
        description="",
        context_length=1000,
        architecture=Architecture(["text"], ["text"], "GPT"),
        supported_parameters=[],
    )


MODELS = {ONE: _model(ONE), TWO: _model(TWO)}


def candidate(model: str, provider: str) -> Candidate:
    endpoint = Endpoint(
        model=model,
        provider=provider,
        upstream_model=model,
        context_length=1000,
        pricing=Pricing(prompt=Decimal("0.000001")),
    )
    return Candidate(MODELS[model], endpoint)


# ONE is served by a, b and c; TWO (the `models` fallback) by d and e.
PLAN = [
    candidate(ONE, "a"),
    candidate(ONE, "b"),
    candidate(ONE, "c"),
    candidate(TWO, "d"),
    candidate(TWO, "e"),
]
KEY = {c.endpoint.provider: c.endpoint.key for c in PLAN}
REQUEST = ChatRequest(messages=[UserMessage(content="hi")], model=ONE)


class Rig:
    def __init__(self, failures: int = 5, cooldown: float = 30.0) -> None:
        self.clock = Clock()
        self.upstream = Upstream(self.clock)
        self.health = HealthTracker(breaker_failures=failures, breaker_cooldown=cooldown)
        providers = {slug: FakeProvider(slug, self.upstream) for slug in "abcde"}
        self.executor = Executor(providers, self.health, self.clock)

    async def complete(self, plan: list[Candidate] = PLAN) -> tuple[ChatResult, Execution]:
        execution = Execution()
        result = await self.executor.complete(REQUEST, plan, execution)
        return result, execution

    def attempts(self, execution: Execution) -> list[tuple[str, str, int]]:
        return [(a.endpoint, a.model, a.status) for a in execution.attempts]


def unavailable() -> UpstreamError:
    return UpstreamUnavailable("down", provider="x")


def refused(status: int = 400) -> UpstreamError:
    return UpstreamError("bad request", provider="x", upstream_status=status, retryable=False)


async def test_first_endpoint_answers() -> None:
    rig = Rig()
    result, execution = await rig.complete()
    assert result.id == f"r-{KEY['a']}"
    assert execution.served_by is PLAN[0]
    assert rig.attempts(execution) == [(KEY["a"], ONE, 200)]
    assert execution.attempts[0].provider == "Provider A"
    assert execution.attempts[0].latency_ms == STEP * 1000
    assert execution.attempts[0].error is None
    assert rig.upstream.calls == [KEY["a"]]


async def test_retryable_errors_fall_through_to_the_next_endpoint() -> None:
    rig = Rig()
    rig.upstream.fail(KEY["a"], unavailable())
    rig.upstream.fail(KEY["b"], UpstreamTimeout("slow", provider="b"))
    result, execution = await rig.complete()
    assert result.id == f"r-{KEY['c']}"
    assert execution.served_by is PLAN[2]
    assert rig.attempts(execution) == [
        (KEY["a"], ONE, 503),
        (KEY["b"], ONE, 408),
        (KEY["c"], ONE, 200),
    ]
    assert [a.error for a in execution.attempts] == ["down", "slow", None]
    assert all(a.latency_ms == STEP * 1000 for a in execution.attempts)


async def test_attempt_status_prefers_the_upstream_status() -> None:
    rig = Rig()
    rig.upstream.fail(KEY["a"], UpstreamError("boom", provider="a", upstream_status=500))
    rig.upstream.fail(KEY["b"], UpstreamError("boom", provider="b"))  # no status: 502
    _, execution = await rig.complete()
    assert [a.status for a in execution.attempts] == [500, 502, 200]


async def test_non_retryable_error_skips_the_model_but_not_the_fallback_model() -> None:
    rig = Rig()
    rig.upstream.fail(KEY["a"], refused(422))
    result, execution = await rig.complete()
    assert rig.upstream.calls == [KEY["a"], KEY["d"]]  # b and c would refuse it too
    assert rig.attempts(execution) == [(KEY["a"], ONE, 422), (KEY["d"], TWO, 200)]
    assert execution.served_by is PLAN[3]
    assert result.model == TWO


async def test_model_fallback_after_every_endpoint_fails() -> None:
    rig = Rig()
    for slug in "abc":
        rig.upstream.fail(KEY[slug], unavailable())
    _, execution = await rig.complete()
    assert [m for _, m, _ in rig.attempts(execution)] == [ONE, ONE, ONE, TWO]
    assert execution.served_by is PLAN[3]


async def test_when_everything_fails_the_last_error_is_raised() -> None:
    rig = Rig()
    for slug in "abcd":
        rig.upstream.fail(KEY[slug], unavailable())
    last = UpstreamError("gone", provider="e", upstream_status=500)
    rig.upstream.fail(KEY["e"], last)
    execution = Execution()
    with pytest.raises(UpstreamError) as info:
        await rig.executor.complete(REQUEST, PLAN, execution)
    assert info.value is last
    assert len(execution.attempts) == 5
    assert execution.served_by is None


async def test_non_retryable_error_of_the_last_model_is_raised() -> None:
    rig = Rig()
    error = refused(400)
    rig.upstream.fail(KEY["d"], error)
    with pytest.raises(UpstreamError) as info:
        await rig.complete(PLAN[3:])
    assert info.value is error
    assert rig.upstream.calls == [KEY["d"]]


# --- health reporting ----------------------------------------------------------------------------


async def test_rate_limited_attempts_are_recorded_but_not_against_uptime() -> None:
    rig = Rig(failures=2)
    for _ in range(10):
        rig.upstream.fail(KEY["a"], UpstreamRateLimited("slow down", provider="a"))
        _, execution = await rig.complete()
        assert rig.attempts(execution) == [(KEY["a"], ONE, 429), (KEY["b"], ONE, 200)]
    snap = rig.health.snapshot(KEY["a"], rig.clock.now)
    assert snap.uptime_5m is None and snap.recent_requests == 0
    assert snap.breaker is BreakerState.CLOSED  # ten 429s in a row, breaker_failures=2
    assert rig.health.snapshot(KEY["b"], rig.clock.now).uptime_5m == 100.0


async def test_retryable_failures_count_against_uptime() -> None:
    rig = Rig()
    rig.upstream.fail(KEY["a"], unavailable())
    await rig.complete()
    snap = rig.health.snapshot(KEY["a"], rig.clock.now)
    assert snap.uptime_5m == 0.0
    assert (snap.recent_failures, snap.recent_requests) == (1, 1)


async def test_refused_requests_are_not_the_endpoints_fault() -> None:
    rig = Rig()
    rig.upstream.fail(KEY["a"], refused(400))
    _, execution = await rig.complete()
    assert execution.attempts[0].status == 400
    assert rig.health.snapshot(KEY["a"], rig.clock.now).uptime_5m is None


async def test_record_timing_and_broken_stream() -> None:
    rig = Rig()
    endpoint = PLAN[0].endpoint
    rig.executor.record_timing(endpoint, latency=0.4, output_tokens=100, duration=2.0)
    snap = rig.health.snapshot(endpoint.key, rig.clock.now)
    assert snap.latency is not None and snap.latency.p50 == 0.4
    assert snap.throughput is not None and snap.throughput.p50 == 50.0
    rig.executor.record_broken_stream(endpoint)
    assert rig.health.snapshot(endpoint.key, rig.clock.now).uptime_5m == 0.0


# --- circuit breaker ------------------------------------------------------------------------------


async def test_endpoint_with_open_breaker_is_skipped() -> None:
    rig = Rig(failures=1)
    rig.health.record(KEY["a"], Outcome.FAILURE, rig.clock.now)
    _, execution = await rig.complete()
    assert execution.skipped == [KEY["a"]]
    assert KEY["a"] not in rig.upstream.calls
    assert rig.attempts(execution) == [(KEY["b"], ONE, 200)]


async def test_failures_during_execution_open_the_breaker_for_the_next_request() -> None:
    rig = Rig(failures=2)
    rig.upstream.fail(KEY["a"], unavailable(), unavailable())
    await rig.complete()
    await rig.complete()
    _, execution = await rig.complete()
    assert execution.skipped == [KEY["a"]]
    assert rig.upstream.calls.count(KEY["a"]) == 2


async def test_everything_skipped_is_no_endpoint_with_retry_after() -> None:
    rig = Rig(failures=1)
    for c in PLAN:
        rig.health.record(c.endpoint.key, Outcome.FAILURE, rig.clock.now)
    execution = Execution()
    with pytest.raises(NoEndpoint) as info:
        await rig.executor.complete(REQUEST, PLAN, execution)
    assert info.value.status == 503
    assert info.value.headers["Retry-After"] == "5"
    assert (info.value.metadata or {})["circuit_open"] == [c.endpoint.key for c in PLAN]
    assert execution.skipped == [c.endpoint.key for c in PLAN]
    assert execution.attempts == [] and rig.upstream.calls == []


async def test_skipped_and_failed_raises_the_upstream_error() -> None:
    rig = Rig(failures=1)
    rig.health.record(KEY["d"], Outcome.FAILURE, rig.clock.now)
    error = unavailable()
    rig.upstream.fail(KEY["e"], error)
    execution = Execution()
    with pytest.raises(UpstreamError) as info:
        await rig.executor.complete(REQUEST, PLAN[3:], execution)
    assert info.value is error
    assert execution.skipped == [KEY["d"]]


async def test_half_open_breaker_lets_a_probe_through_and_success_closes_it() -> None:
    rig = Rig(failures=1, cooldown=10)
    rig.upstream.fail(KEY["a"], unavailable())
    await rig.complete()
    rig.clock.now += 10
    _, execution = await rig.complete()
    assert execution.skipped == []
    assert execution.served_by is PLAN[0]
    assert rig.health.snapshot(KEY["a"], rig.clock.now).breaker is BreakerState.CLOSED


# --- streams -------------------------------------------------------------------------------------


async def test_open_stream_falls_back_the_same_way() -> None:
    rig = Rig()
    rig.upstream.fail(KEY["a"], unavailable())
    rig.upstream.fail(KEY["b"], refused(400))
    execution = Execution()
    stream = await rig.executor.open_stream(REQUEST, PLAN, execution)
    assert isinstance(stream, Stream) and stream.key == KEY["d"]
    assert rig.attempts(execution) == [
        (KEY["a"], ONE, 503),
        (KEY["b"], ONE, 400),
        (KEY["d"], TWO, 200),
    ]
    assert execution.served_by is PLAN[3]


# --- bugs these tests found (fixed) ---------------------------------------------------------------


async def test_probe_refusing_the_request_does_not_wedge_the_breaker() -> None:
    rig = Rig(failures=1, cooldown=10)
    rig.upstream.fail(KEY["a"], unavailable())
    await rig.complete()  # opens a's breaker
    rig.clock.now += 10
    rig.upstream.fail(KEY["a"], refused(400))  # the half-open probe hits a bad request
    await rig.complete()
    rig.clock.now += 3600  # an hour later, a must at least be probed again
    _, execution = await rig.complete()
    assert KEY["a"] not in execution.skipped


async def test_refused_models_stay_refused_when_candidates_interleave() -> None:
    rig = Rig()
    interleaved = [PLAN[3], PLAN[0], PLAN[4], PLAN[1]]  # d(TWO), a(ONE), e(TWO), b(ONE)
    for c in interleaved:
        rig.upstream.fail(c.endpoint.key, refused(400))
    with pytest.raises(UpstreamError):
        await rig.complete(interleaved)
    assert rig.upstream.calls == [KEY["d"], KEY["a"]]


async def test_cancelled_probe_does_not_wedge_the_breaker() -> None:
    rig = Rig(failures=1, cooldown=10)
    rig.upstream.fail(KEY["a"], unavailable())
    await rig.complete()  # opens a's breaker
    rig.clock.now += 10
    rig.upstream.fail(KEY["a"], asyncio.CancelledError())  # the probe's client went away
    with pytest.raises(asyncio.CancelledError):
        await rig.complete()
    rig.clock.now += 3600  # an hour later, a must at least be probed again
    _, execution = await rig.complete()
    assert KEY["a"] not in execution.skipped
