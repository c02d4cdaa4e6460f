"""Prometheus metrics: what the HTTP server, the generations and the upstreams are doing.

Every series is labelled only with values from bounded sets: route templates (not raw
paths), HTTP methods and statuses, catalog model ids and provider slugs of the endpoint
that served (never a model name as the client wrote it), normalised finish reasons. So the
number of series stays proportional to the catalog, whatever clients send.

Recording happens once per HTTP request (:meth:`Metrics.observe_http`) and once per
generation (:meth:`Metrics.settled`, from the meter's single settlement), through children
bound once and cached, so the hot path does a dict lookup and a few float additions. Circuit
breaker states are read from the health tracker when Prometheus scrapes, not tracked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from switchyard.accounting.money import from_pico
from switchyard.errors import PaymentRequired, RateLimited, SwitchyardError
from switchyard.routing.health import BreakerState, HealthTracker

if TYPE_CHECKING:
    from switchyard.accounting.meter import CallContext, Outcome
    from switchyard.accounting.records import GenerationRecord
    from switchyard.catalog import Endpoint
    from switchyard.execute import Execution

PREFIX = "switchyard"
# prometheus_client reads this when it is imported: set it before any worker starts.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "error"})
UNMATCHED_ROUTE = "unmatched"

# Streams hold a request open for minutes; short calls finish in milliseconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60)
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


@dataclass(slots=True)
class _Served:
    """The children of one (model, provider) pair, bound once."""

    prompt: Counter
    completion: Counter
    cached: Counter
    reasoning: Counter
    cost: Counter
    first_token: Histogram
    duration: Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # ``*_created`` timestamps would double the series for what a restart already says.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        # What a scrape reads: this process's registry, or every worker's files.
        self._exposed = r
        if self._multiprocess_dir is not None:
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests served, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from receiving a request to the end of its response (streams included)",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_in_progress = Gauge(
            f"{PREFIX}_http_requests_in_progress",
            "HTTP requests being served now",
            registry=r,
            multiprocess_mode="livesum",  # the workers alive now, added up
        )
        self.generations = Counter(
            f"{PREFIX}_generations",
            "Generations served, by catalog model, provider and finish reason",
            ["model", "provider", "finish_reason"],
            registry=r,
        )
        self.tokens = Counter(
            f"{PREFIX}_tokens",
            "Tokens of served generations; type: prompt, completion, cached (of the prompt), "
            "reasoning (of the completion)",
            ["model", "provider", "type"],
            registry=r,
        )
        self.cost = Counter(
            f"{PREFIX}_cost_usd",
            "What served generations were charged, in US dollars",
            ["model", "provider"],
            registry=r,
        )
        self.first_token = Histogram(
            f"{PREFIX}_time_to_first_token_seconds",
            "Streamed generations: time from the request to the first token",
            ["model", "provider"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.generation_duration = Histogram(
            f"{PREFIX}_generation_duration_seconds",
            "Time from the request to the end of the generation",
            ["model", "provider"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )
        self.upstream_attempts = Counter(
            f"{PREFIX}_upstream_attempts",
            "Requests sent to providers (fallbacks included), by provider",
            ["provider"],
            registry=r,
        )
        self.upstream_errors = Counter(
            f"{PREFIX}_upstream_errors",
            "Failed provider requests, by provider and upstream status (mid_stream: the "
            "stream broke after it started)",
            ["provider", "status"],
            registry=r,
        )
        self.refused = Counter(
            f"{PREFIX}_requests_refused",
            "Requests refused before reaching a provider: insufficient_credits (402), "
            "rate_limited (429)",
            ["reason"],
            registry=r,
        )
        if self._multiprocess_dir is None:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self._providers: dict[str, str] = {}  # endpoint key -> provider slug
        self._http: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._served: dict[str, _Served] = {}  # endpoint key -> children
        self._finishes: dict[tuple[str, str], Counter] = {}
        self._attempts: dict[str, Counter] = {}

    # --- wiring ----------------------------------------------------------------------------

    def watch_endpoints(
        self,
        endpoints: Iterable[Endpoint],
        health: HealthTracker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """The endpoints that may serve: attempts are attributed to their providers, and their
        circuit breakers are reported at each scrape."""
        watched = list(endpoints)
        self._providers.update((e.key, e.provider) for e in watched)
        # Breakers are shared through Redis when there are workers: any one's view will do.
        self._exposed.register(_BreakerCollector(watched, health, clock))

    # --- recording -------------------------------------------------------------------------

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "OTHER"  # the client's choice: never a key of anything that grows
        children = self._http.get((route, method, status))
        if children is None:
            children = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route, method),
            )
            self._http[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def refused_by(self, error: SwitchyardError) -> None:
        if isinstance(error, PaymentRequired):
            self.refused.labels("insufficient_credits").inc()
        elif isinstance(error, RateLimited):
            self.refused.labels("rate_limited").inc()

    def settled(
        self,
        ctx: CallContext,
        execution: Execution,
        outcome: Outcome,
        record: GenerationRecord | None,
    ) -> None:
        """One generation's outcome: its upstream attempts, and what was served and charged."""
        for attempt in execution.attempts:
            provider = self._providers.get(attempt.endpoint, "unknown")
            attempts = self._attempts.get(provider)
            if attempts is None:
                attempts = self._attempts[provider] = self.upstream_attempts.labels(provider)
            attempts.inc()
            if attempt.status != 200:
                self.upstream_errors.labels(provider, str(attempt.status)).inc()
        served = outcome.served
        if served is None or record is None:
            return
        endpoint = served.endpoint
        model, provider = endpoint.model, endpoint.provider
        if outcome.finish_reason == "error":
            # The provider accepted the request, then failed inside its answer.
            self.upstream_errors.labels(provider, "mid_stream" if ctx.streamed else "in_body").inc()
        self._finish_counter(model, provider, outcome).inc()
        children = self._served.get(endpoint.key)
        if children is None:
            children = self._served[endpoint.key] = self._bind(model, provider)
        if record.tokens_prompt:
            children.prompt.inc(record.tokens_prompt)
        if record.tokens_completion:
            children.completion.inc(record.tokens_completion)
        if record.native_tokens_cached:
            children.cached.inc(record.native_tokens_cached)
        if record.native_tokens_reasoning:
            children.reasoning.inc(record.native_tokens_reasoning)
        if record.total_cost:
            # Decimal until here; Prometheus samples are floats.
            children.cost.inc(float(from_pico(record.total_cost)))
        if ctx.streamed and ctx.first_token_at is not None:
            children.first_token.observe(ctx.first_token_at - ctx.started)
        if record.generation_time_ms is not None:
            children.duration.observe(record.generation_time_ms / 1000)

    def _finish_counter(self, model: str, provider: str, outcome: Outcome) -> Counter:
        if outcome.cancelled:
            finish = "cancelled"
        elif outcome.finish_reason is None:
            finish = "none"
        elif outcome.finish_reason in FINISH_REASONS:
            finish = outcome.finish_reason
        else:
            finish = "other"
        key = (f"{model}@{provider}", finish)
        counter = self._finishes.get(key)
        if counter is None:
            counter = self._finishes[key] = self.generations.labels(model, provider, finish)
        return counter

    def _bind(self, model: str, provider: str) -> _Served:
        return _Served(
            prompt=self.tokens.labels(model, provider, "prompt"),
            completion=self.tokens.labels(model, provider, "completion"),
            cached=self.tokens.labels(model, provider, "cached"),
            reasoning=self.tokens.labels(model, provider, "reasoning"),
            cost=self.cost.labels(model, provider),
            first_token=self.first_token.labels(model, provider),
            duration=self.generation_duration.labels(model, provider),
        )

    # --- exposition ------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition the scraper asks for in ``Accept`` (OpenMetrics or a version of
        the Prometheus text format; text 0.0.4 by default), and its content type."""
        encode, content_type = choose_encoder(accept or "")
        return encode(self._exposed), content_type

    def close(self) -> None:
        """This worker is stopping: its live gauges (requests in progress) stop counting.
        Its counters stay in the directory, part of the server's totals."""
        if self._multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self._multiprocess_dir)  # type: ignore[no-untyped-call]


class _BreakerCollector(Collector):
    """Each endpoint's circuit breaker, read from the health tracker at scrape time: one
    series per endpoint and state, 1 for the state it is in and 0 for the others."""

    def __init__(
        self, endpoints: list[Endpoint], health: HealthTracker, clock: Callable[[], float]
    ) -> None:
        self._endpoints = endpoints
        self._health = health
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # not known until scraped; keeps registration from calling collect()

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{PREFIX}_circuit_breaker_state",
            "Circuit breaker of each endpoint (model at provider): 1 for its current state",
            labels=["endpoint", "model", "provider", "state"],
        )
        now = self._clock()
        for endpoint in self._endpoints:
            current = self._health.breaker_state(endpoint.key, now)
            for state in BreakerState:
                family.add_metric(
                    [endpoint.key, endpoint.model, endpoint.provider, state.value],
                    1.0 if state is current else 0.0,
                )
        yield family
