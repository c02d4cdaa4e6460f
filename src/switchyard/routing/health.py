"""Measured endpoint health: uptime, latency, throughput, and a circuit breaker.

Outcomes are counted in sliding windows of buckets with running totals (30 s, 5 min,
30 min, a day), and timings are kept as samples of the last 30 minutes (latency: time to
first token; throughput: output tokens per second) in sorted order, so recording and reading
cost O(1) or O(log n) per request however busy an endpoint is, in bounded memory.
Rate-limited requests count neither as up nor as down: a 429 says the provider is busy with
our key, not that it is broken. Everything takes the clock as an argument so routing
decisions stay pure functions of a snapshot.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

BUCKET_SECONDS = 60
DAY = 24 * 3600
WINDOW_30M = 30 * 60
RECENT_SECONDS = 30
# Latency and throughput percentiles use at most this many of the newest samples.
MAX_SAMPLES = 4096


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


class _Rolling:
    """Successes and failures over a sliding window, in fixed buckets, with running totals:
    adding an outcome and reading the totals are O(1) however busy the endpoint is."""

    __slots__ = ("_bucket", "_buckets", "_window", "failed", "ok")

    def __init__(self, window: float, bucket: float) -> None:
        self._window = window
        self._bucket = bucket
        self._buckets: deque[list[float]] = deque()  # [start, ok, failed]
        self.ok = 0
        self.failed = 0

    def add(self, now: float, ok: bool) -> None:
        self.roll(now)
        start = now - now % self._bucket
        if not self._buckets or self._buckets[-1][0] != start:
            self._buckets.append([start, 0, 0])
        self._buckets[-1][1 if ok else 2] += 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def roll(self, now: float) -> None:
        """Drop the buckets that have left the window entirely."""
        while self._buckets and self._buckets[0][0] + self._bucket <= now - self._window:
            _, ok, failed = self._buckets.popleft()
            self.ok -= int(ok)
            self.failed -= int(failed)

    def uptime(self, now: float) -> float | None:
        self.roll(now)
        total = self.ok + self.failed
        return round(100 * self.ok / total, 2) if total else None


class _Samples:
    """Values of the last ``window`` seconds (at most ``cap`` of them, the newest), kept
    sorted as they arrive so that percentiles are a lookup, not a sort per request."""

    __slots__ = ("_cap", "_order", "_sorted", "_window")

    def __init__(self, window: float, cap: int) -> None:
        self._window = window
        self._cap = cap
        self._order: deque[tuple[float, float]] = deque()  # (time, value), oldest first
        self._sorted: list[float] = []

    def add(self, now: float, value: float) -> None:
        self._order.append((now, value))
        bisect.insort(self._sorted, value)
        if len(self._order) > self._cap:
            self._drop()
        self.roll(now)

    def roll(self, now: float) -> None:
        while self._order and self._order[0][0] < now - self._window:
            self._drop()

    def _drop(self) -> None:
        _, value = self._order.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, value)]

    def percentiles(self, now: float) -> Percentiles | None:
        self.roll(now)
        ordered = self._sorted
        if not ordered:
            return None

        def pick(q: float) -> float:
            # Nearest rank: the smallest value with at least q of the samples at or below.
            return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 4)

        return Percentiles(pick(0.5), pick(0.75), pick(0.9), pick(0.99))


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

    def record(self, ok: bool, now: float) -> bool:
        """Count one verdict; True when it opened the breaker."""
        state = self.current(now)
        probe = self.probing
        self.probing = False
        if ok:
            self.state, self.consecutive, self.opens = BreakerState.CLOSED, 0, 0
            return False
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and not probe):
            # A request let through before the breaker opened, failing late: it says
            # nothing new, and must not escalate the cooldown as a failed probe would.
            return False
        self.consecutive += 1
        if state is BreakerState.HALF_OPEN or self.consecutive >= self.failures_to_open:
            self.state, self.opened_at = BreakerState.OPEN, now
            self.opens += 1
            return True
        return False

    def open_for(self, seconds: float, now: float) -> None:
        """Opened elsewhere (another replica): stay open at least ``seconds`` from now."""
        if self.current(now) is BreakerState.OPEN:
            remaining = self._cooldown() - (now - self.opened_at)
            if remaining >= seconds:
                return
        self.state = BreakerState.OPEN
        self.opens = max(self.opens, 1)
        self.opened_at = now - (self._cooldown() - seconds)

    def release(self) -> None:
        """The probe got an answer that is no verdict (a 429): let the next one through."""
        self.probing = False


class _Endpoint:
    __slots__ = ("day", "latencies", "minutes5", "minutes30", "recent", "throughputs")

    def __init__(self) -> None:
        self.recent = _Rolling(RECENT_SECONDS, 1)
        self.minutes5 = _Rolling(5 * 60, 10)
        self.minutes30 = _Rolling(WINDOW_30M, BUCKET_SECONDS)
        self.day = _Rolling(DAY, BUCKET_SECONDS)
        self.latencies = _Samples(WINDOW_30M, MAX_SAMPLES)
        self.throughputs = _Samples(WINDOW_30M, MAX_SAMPLES)


class HealthTracker:
    def __init__(self, *, breaker_failures: int = 5, breaker_cooldown: float = 30.0) -> None:
        self._endpoints: dict[str, _Endpoint] = {}
        self._breakers: dict[str, _Breaker] = {}
        self._breaker_failures = breaker_failures
        self._breaker_cooldown = breaker_cooldown
        # Told (endpoint key, seconds open) whenever a breaker here opens, so that other
        # replicas can be told too.
        self.on_open: Callable[[str, float], None] | None = None
        # Told when a probe closes an open breaker again.
        self.on_close: Callable[[str], None] | None = None

    def _breaker(self, key: str) -> _Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = _Breaker(self._breaker_failures, self._breaker_cooldown)
        return breaker

    def _endpoint(self, key: str) -> _Endpoint:
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = _Endpoint()
        return endpoint

    # --- recording -------------------------------------------------------------------------

    def record(self, key: str, outcome: Outcome, now: float) -> None:
        """One request's outcome: uptime, the 30-second failure window, the breaker."""
        if outcome is Outcome.RATE_LIMITED:
            # Busy with our key, not broken: neither up nor down; a probe may try again.
            breaker = self._breakers.get(key)
            if breaker is not None:
                breaker.release()
            return
        ok = outcome is Outcome.SUCCESS
        endpoint = self._endpoint(key)
        for window in (endpoint.recent, endpoint.minutes5, endpoint.minutes30, endpoint.day):
            window.add(now, ok)
        self._verdict(key, ok, now)

    def _verdict(self, key: str, ok: bool, now: float) -> None:
        breaker = self._breaker(key)
        was_open = breaker.state is BreakerState.OPEN
        if breaker.record(ok, now):
            if self.on_open is not None:
                self.on_open(key, breaker._cooldown())
        elif ok and was_open and self.on_close is not None:
            self.on_close(key)

    def open_breaker(self, key: str, seconds: float, now: float) -> None:
        """Another replica opened this endpoint's breaker for ``seconds``: avoid it too."""
        self._breaker(key).open_for(seconds, now)

    def release(self, key: str) -> None:
        """A request ended without an outcome (cancelled): free a half-open probe slot."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            breaker.release()

    def responded(self, key: str, now: float) -> None:
        """The endpoint answered, refusing the request itself (a 4xx): it is up, so the
        breaker closes, but the refusal counts for neither uptime nor downtime."""
        self._verdict(key, True, now)

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
        endpoint = self._endpoint(key)
        if latency is not None:
            endpoint.latencies.add(now, latency)
        if output_tokens and duration and duration > 0:
            endpoint.throughputs.add(now, output_tokens / duration)

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

    # --- reading ---------------------------------------------------------------------------

    def breaker_state(self, key: str, now: float) -> BreakerState:
        """Just the breaker, for metrics scraped often: no windows rolled, no percentiles."""
        breaker = self._breakers.get(key)
        return breaker.current(now) if breaker is not None else BreakerState.CLOSED

    def snapshot(self, key: str, now: float) -> EndpointHealth:
        endpoint = self._endpoints.get(key)
        breaker = self._breakers.get(key)
        state = breaker.current(now) if breaker else BreakerState.CLOSED
        if endpoint is None:
            return EndpointHealth(None, None, None, 0, 0, None, None, state)
        endpoint.recent.roll(now)
        return EndpointHealth(
            uptime_5m=endpoint.minutes5.uptime(now),
            uptime_30m=endpoint.minutes30.uptime(now),
            uptime_1d=endpoint.day.uptime(now),
            recent_failures=endpoint.recent.failed,
            recent_requests=endpoint.recent.ok + endpoint.recent.failed,
            latency=endpoint.latencies.percentiles(now),
            throughput=endpoint.throughputs.percentiles(now),
            breaker=state,
        )

    def snapshots(self, keys: list[str], now: float) -> dict[str, EndpointHealth]:
        return {key: self.snapshot(key, now) for key in keys}
