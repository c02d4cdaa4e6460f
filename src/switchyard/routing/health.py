"""Measured endpoint health: uptime, latency, throughput, and a circuit breaker.

Outcomes are kept in one-minute buckets (counts) for uptime up to a day, and as raw samples
for the last 30 minutes (latency: time to first token; throughput: output tokens per
second). Rate-limited requests count neither as up nor as down: a 429 says the provider is
busy with our key, not that it is broken. Everything takes the clock as an argument so
routing decisions stay pure functions of a snapshot.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

BUCKET_SECONDS = 60
DAY = 24 * 3600
WINDOW_30M = 30 * 60
RECENT_SECONDS = 30


class Outcome(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    RATE_LIMITED = "rate_limited"


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float
    p75: float
    p90: float
    p99: float

    def get(self, name: str) -> float:
        value: float = getattr(self, name)
        return value


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """What routing and the endpoints API read: one endpoint at one moment."""

    uptime_5m: float | None  # percent, None until measured
    uptime_30m: float | None
    uptime_1d: float | None
    recent_failures: int  # failures in the last 30 s
    recent_requests: int
    latency: Percentiles | None  # seconds to first token, last 30 min
    throughput: Percentiles | None  # output tokens per second, last 30 min
    breaker: BreakerState

    @property
    def recently_failing(self) -> bool:
        """'Significant failures in the last 30 seconds': three, or half of what was sent."""
        if self.breaker is BreakerState.OPEN:
            return True
        return self.recent_failures >= 3 or (
            self.recent_failures > 0 and self.recent_failures * 2 >= self.recent_requests
        )


UNKNOWN = EndpointHealth(None, None, None, 0, 0, None, None, BreakerState.CLOSED)


@dataclass(slots=True)
class _Bucket:
    start: int
    ok: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Breaker:
    failures_to_open: int
    cooldown: float
    state: BreakerState = BreakerState.CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    opens: int = 0
    probing: bool = False

    def current(self, now: float) -> BreakerState:
        if self.state is BreakerState.OPEN and now - self.opened_at >= self._cooldown():
            return BreakerState.HALF_OPEN
        return self.state

    def _cooldown(self) -> float:
        # Back off while an endpoint keeps failing its probes, up to 8x the base cooldown.
        return self.cooldown * float(min(2 ** max(self.opens - 1, 0), 8))

    def record(self, ok: bool, now: float) -> None:
        state = self.current(now)
        self.probing = False
        if ok:
            self.state, self.consecutive, self.opens = BreakerState.CLOSED, 0, 0
            return
        self.consecutive += 1
        if state is BreakerState.HALF_OPEN or self.consecutive >= self.failures_to_open:
            self.state, self.opened_at = BreakerState.OPEN, now
            self.opens += 1


@dataclass(slots=True)
class _Endpoint:
    buckets: deque[_Bucket] = field(default_factory=deque)
    recent: deque[tuple[float, bool]] = field(default_factory=deque)  # (time, ok), 30 s
    latencies: deque[tuple[float, float]] = field(default_factory=deque)  # (time, seconds)
    throughputs: deque[tuple[float, float]] = field(default_factory=deque)


class HealthTracker:
    def __init__(self, *, breaker_failures: int = 5, breaker_cooldown: float = 30.0) -> None:
        self._endpoints: dict[str, _Endpoint] = {}
        self._breakers: dict[str, _Breaker] = {}
        self._breaker_failures = breaker_failures
        self._breaker_cooldown = breaker_cooldown

    def _breaker(self, key: str) -> _Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = _Breaker(self._breaker_failures, self._breaker_cooldown)
        return breaker

    # --- recording -------------------------------------------------------------------------

    def record(self, key: str, outcome: Outcome, now: float) -> None:
        """One request's outcome: uptime, the 30-second failure window, the breaker."""
        endpoint = self._endpoints.setdefault(key, _Endpoint())
        if outcome is not Outcome.RATE_LIMITED:
            ok = outcome is Outcome.SUCCESS
            start = int(now) - int(now) % BUCKET_SECONDS
            if not endpoint.buckets or endpoint.buckets[-1].start != start:
                endpoint.buckets.append(_Bucket(start))
            bucket = endpoint.buckets[-1]
            if ok:
                bucket.ok += 1
            else:
                bucket.failed += 1
            endpoint.recent.append((now, ok))
            self._breaker(key).record(ok, now)
        self._trim(endpoint, now)

    def sample(
        self,
        key: str,
        now: float,
        *,
        latency: float | None = None,
        output_tokens: int | None = None,
        duration: float | None = None,
    ) -> None:
        """Timings of a served request: time to first token, output tokens per second."""
        endpoint = self._endpoints.setdefault(key, _Endpoint())
        if latency is not None:
            endpoint.latencies.append((now, latency))
        if output_tokens and duration and duration > 0:
            endpoint.throughputs.append((now, output_tokens / duration))
        self._trim(endpoint, now)

    def allow(self, key: str, now: float) -> bool:
        """May a request go to this endpoint? Half-open breakers let one probe through."""
        breaker = self._breakers.get(key)
        if breaker is None:
            return True
        state = breaker.current(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not breaker.probing:
            breaker.probing = True
            return True
        return False

    def _trim(self, endpoint: _Endpoint, now: float) -> None:
        while endpoint.buckets and endpoint.buckets[0].start < now - DAY - BUCKET_SECONDS:
            endpoint.buckets.popleft()
        while endpoint.recent and endpoint.recent[0][0] < now - RECENT_SECONDS:
            endpoint.recent.popleft()
        for samples in (endpoint.latencies, endpoint.throughputs):
            while samples and samples[0][0] < now - WINDOW_30M:
                samples.popleft()

    # --- reading ---------------------------------------------------------------------------

    def snapshot(self, key: str, now: float) -> EndpointHealth:
        endpoint = self._endpoints.get(key)
        breaker = self._breakers.get(key)
        state = breaker.current(now) if breaker else BreakerState.CLOSED
        if endpoint is None:
            return EndpointHealth(None, None, None, 0, 0, None, None, state)
        self._trim(endpoint, now)
        recent = [ok for t, ok in endpoint.recent if t >= now - RECENT_SECONDS]
        return EndpointHealth(
            uptime_5m=_uptime(endpoint.buckets, now - 5 * 60),
            uptime_30m=_uptime(endpoint.buckets, now - WINDOW_30M),
            uptime_1d=_uptime(endpoint.buckets, now - DAY),
            recent_failures=sum(1 for ok in recent if not ok),
            recent_requests=len(recent),
            latency=_percentiles([v for _, v in endpoint.latencies]),
            throughput=_percentiles([v for _, v in endpoint.throughputs]),
            breaker=state,
        )

    def snapshots(self, keys: list[str], now: float) -> dict[str, EndpointHealth]:
        return {key: self.snapshot(key, now) for key in keys}


def _uptime(buckets: deque[_Bucket], since: float) -> float | None:
    ok = failed = 0
    for bucket in reversed(buckets):
        if bucket.start + BUCKET_SECONDS <= since:
            break
        ok += bucket.ok
        failed += bucket.failed
    total = ok + failed
    return round(100 * ok / total, 2) if total else None


def _percentiles(values: list[float]) -> Percentiles | None:
    if not values:
        return None
    ordered = sorted(values)

    def pick(q: float) -> float:
        # Nearest-rank percentile: the smallest value with at least q of the samples at or
        # below it.
        index = max(0, math.ceil(q * len(ordered)) - 1)
        return round(ordered[index], 4)

    return Percentiles(pick(0.5), pick(0.75), pick(0.9), pick(0.99))


__all__ = [
    "UNKNOWN",
    "BreakerState",
    "EndpointHealth",
    "HealthTracker",
    "Outcome",
    "Percentiles",
]
