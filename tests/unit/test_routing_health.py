"""HealthTracker: uptime windows, the 30-second failure window, percentiles, circuit breaker.

Every call takes the clock as ``now``, so these tests drive time explicitly.
"""

from __future__ import annotations

import math

from switchyard.routing.health import (
    MAX_SAMPLES,
    UNKNOWN,
    BreakerState,
    EndpointHealth,
    HealthTracker,
    Outcome,
    Percentiles,
)

KEY = "acme/one@a"
NOW = 2 * 86_400.0  # a whole number of minutes: buckets line up with the windows
MIN = 60.0
HOUR = 3600.0


def record(tracker: HealthTracker, outcome: Outcome, at: float, times: int = 1) -> None:
    for _ in range(times):
        tracker.record(KEY, outcome, at)


# --- uptime ---------------------------------------------------------------------------------------


def test_uptime_windows() -> None:
    t = HealthTracker(breaker_failures=1000)
    record(t, Outcome.SUCCESS, NOW - 25 * HOUR, 50)  # older than a day: in no window
    record(t, Outcome.FAILURE, NOW - 3 * HOUR, 2)  # the day only
    record(t, Outcome.FAILURE, NOW - 20 * MIN)  # 30 minutes and the day
    record(t, Outcome.SUCCESS, NOW - 2 * MIN, 3)  # every window
    snap = t.snapshot(KEY, NOW)
    assert snap.uptime_5m == 100.0
    assert snap.uptime_30m == 75.0  # 3 of 4
    assert snap.uptime_1d == 50.0  # 3 of 6


def test_rate_limited_outcomes_are_neither_up_nor_down() -> None:
    t = HealthTracker(breaker_failures=1000)
    record(t, Outcome.SUCCESS, NOW - 10, 2)
    record(t, Outcome.FAILURE, NOW - 10)
    record(t, Outcome.RATE_LIMITED, NOW - 5, 20)
    snap = t.snapshot(KEY, NOW)
    assert snap.uptime_5m == snap.uptime_30m == snap.uptime_1d == 66.67  # 2 of 3, rounded
    assert snap.recent_requests == 3
    assert snap.recent_failures == 1


def test_uptime_is_none_until_measured() -> None:
    t = HealthTracker()
    assert t.snapshot(KEY, NOW) == EndpointHealth(
        None, None, None, 0, 0, None, None, BreakerState.CLOSED
    )
    record(t, Outcome.RATE_LIMITED, NOW, 5)
    snap = t.snapshot(KEY, NOW)
    assert (snap.uptime_5m, snap.uptime_30m, snap.uptime_1d) == (None, None, None)
    assert snap.recent_requests == 0
    # A window with nothing in it reads None, not 0 or 100.
    record(t, Outcome.SUCCESS, NOW - 10 * MIN)
    snap = t.snapshot(KEY, NOW)
    assert snap.uptime_5m is None
    assert snap.uptime_30m == 100.0


def test_old_outcomes_age_out_of_windows() -> None:
    t = HealthTracker(breaker_failures=1000)
    record(t, Outcome.FAILURE, NOW)
    assert t.snapshot(KEY, NOW).uptime_5m == 0.0
    later = NOW + 10 * MIN
    assert t.snapshot(KEY, later).uptime_5m is None
    assert t.snapshot(KEY, later).uptime_30m == 0.0
    assert t.snapshot(KEY, NOW + 2 * HOUR).uptime_30m is None
    assert t.snapshot(KEY, NOW + 2 * HOUR).uptime_1d == 0.0
    assert t.snapshot(KEY, NOW + 25 * HOUR).uptime_1d is None


def test_endpoints_are_tracked_separately() -> None:
    t = HealthTracker(breaker_failures=1000)
    t.record("x@a", Outcome.FAILURE, NOW)
    t.record("x@b", Outcome.SUCCESS, NOW)
    both = t.snapshots(["x@a", "x@b", "x@c"], NOW)
    assert both["x@a"].uptime_5m == 0.0
    assert both["x@b"].uptime_5m == 100.0
    assert both["x@c"].uptime_5m is None


# --- recently failing -----------------------------------------------------------------------------


def _recent(failures: int, requests: int, breaker: BreakerState = BreakerState.CLOSED) -> bool:
    return EndpointHealth(
        None, None, None, failures, requests, None, None, breaker
    ).recently_failing


def test_recently_failing_rules() -> None:
    assert _recent(3, 100)  # three failures is significant however much was sent
    assert _recent(2, 4)  # half of what was sent
    assert _recent(1, 1)
    assert not _recent(2, 5)
    assert not _recent(0, 0)
    assert not _recent(0, 50)
    assert _recent(0, 0, BreakerState.OPEN)
    assert not _recent(0, 10, BreakerState.HALF_OPEN)
    assert not UNKNOWN.recently_failing


def test_recent_window_is_thirty_seconds() -> None:
    t = HealthTracker(breaker_failures=1000)
    record(t, Outcome.FAILURE, NOW - 40, 5)  # outside the window
    record(t, Outcome.FAILURE, NOW - 20)
    record(t, Outcome.SUCCESS, NOW - 10, 2)
    snap = t.snapshot(KEY, NOW)
    assert (snap.recent_failures, snap.recent_requests) == (1, 3)
    assert not snap.recently_failing
    record(t, Outcome.FAILURE, NOW - 5, 2)
    assert t.snapshot(KEY, NOW).recently_failing  # 3 failures
    assert not t.snapshot(KEY, NOW + 31).recently_failing  # all of them aged out


# --- percentiles ----------------------------------------------------------------------------------


def test_latency_percentiles_nearest_rank() -> None:
    t = HealthTracker()
    for i in range(100, 0, -1):  # order of arrival does not matter
        t.sample(KEY, NOW, latency=i / 100)
    assert t.snapshot(KEY, NOW).latency == Percentiles(0.5, 0.75, 0.9, 0.99)


def test_percentiles_of_few_samples() -> None:
    t = HealthTracker()
    for value in [7, 1, 3, 10, 2, 9, 4, 6, 8, 5]:
        t.sample(KEY, NOW, latency=float(value))
    # Nearest rank: the ceil(q*n)-th smallest.
    assert t.snapshot(KEY, NOW).latency == Percentiles(5, 8, 9, 10)
    single = HealthTracker()
    single.sample(KEY, NOW, latency=0.123456)
    assert single.snapshot(KEY, NOW).latency == Percentiles(0.1235, 0.1235, 0.1235, 0.1235)


def test_throughput_is_tokens_per_second() -> None:
    t = HealthTracker()
    t.sample(KEY, NOW, output_tokens=100, duration=2.0)
    t.sample(KEY, NOW, output_tokens=300, duration=2.0)
    t.sample(KEY, NOW, output_tokens=0, duration=2.0)  # nothing generated: no sample
    t.sample(KEY, NOW, output_tokens=10, duration=0.0)  # no duration: no sample
    snap = t.snapshot(KEY, NOW)
    assert snap.throughput == Percentiles(50, 150, 150, 150)
    assert snap.latency is None


def test_timings_keep_only_the_newest_samples() -> None:
    t = HealthTracker()
    extra = 1000
    for i in range(MAX_SAMPLES + extra):
        t.sample(KEY, NOW, latency=float(i))
    # The newest MAX_SAMPLES values are extra .. extra + MAX_SAMPLES - 1; nearest rank.
    got = t.snapshot(KEY, NOW).latency
    assert got is not None
    assert got.p50 == extra + math.ceil(0.5 * MAX_SAMPLES) - 1
    assert got.p99 == extra + math.ceil(0.99 * MAX_SAMPLES) - 1


def test_percentiles_cover_the_last_thirty_minutes_only() -> None:
    t = HealthTracker()
    t.sample(KEY, NOW - 40 * MIN, latency=100.0, output_tokens=1, duration=1.0)
    t.sample(KEY, NOW - 31 * MIN, latency=90.0, output_tokens=2, duration=1.0)
    t.sample(KEY, NOW - 29 * MIN, latency=1.0, output_tokens=50, duration=1.0)
    t.sample(KEY, NOW - 1 * MIN, latency=2.0, output_tokens=70, duration=1.0)
    snap = t.snapshot(KEY, NOW)
    assert snap.latency == Percentiles(1.0, 2.0, 2.0, 2.0)
    assert snap.throughput == Percentiles(50, 70, 70, 70)
    assert t.snapshot(KEY, NOW + 45 * MIN).latency is None


# --- circuit breaker ------------------------------------------------------------------------------


def breaker(failures: int = 3, cooldown: float = 10.0) -> HealthTracker:
    return HealthTracker(breaker_failures=failures, breaker_cooldown=cooldown)


def state(t: HealthTracker, now: float) -> BreakerState:
    return t.snapshot(KEY, now).breaker


def test_breaker_opens_after_consecutive_failures() -> None:
    t = breaker()
    assert t.allow(KEY, NOW)  # never seen
    record(t, Outcome.FAILURE, NOW, 2)
    record(t, Outcome.SUCCESS, NOW)  # resets the run
    record(t, Outcome.FAILURE, NOW, 2)
    assert t.allow(KEY, NOW) and state(t, NOW) is BreakerState.CLOSED
    record(t, Outcome.FAILURE, NOW)
    assert state(t, NOW) is BreakerState.OPEN
    assert t.snapshot(KEY, NOW).recently_failing
    assert not t.allow(KEY, NOW)
    assert not t.allow(KEY, NOW + 9.9)


def test_rate_limits_do_not_trip_or_reset_the_breaker() -> None:
    t = breaker()
    record(t, Outcome.RATE_LIMITED, NOW, 50)
    assert state(t, NOW) is BreakerState.CLOSED
    record(t, Outcome.FAILURE, NOW, 2)
    record(t, Outcome.RATE_LIMITED, NOW)
    record(t, Outcome.FAILURE, NOW)
    assert state(t, NOW) is BreakerState.OPEN


def test_half_open_lets_exactly_one_probe_through() -> None:
    t = breaker()
    record(t, Outcome.FAILURE, NOW, 3)
    assert state(t, NOW + 10) is BreakerState.HALF_OPEN
    assert t.allow(KEY, NOW + 10)
    assert not t.allow(KEY, NOW + 10)
    assert not t.allow(KEY, NOW + 11)


def test_successful_probe_closes_the_breaker() -> None:
    t = breaker()
    record(t, Outcome.FAILURE, NOW, 3)
    assert t.allow(KEY, NOW + 10)
    record(t, Outcome.SUCCESS, NOW + 10.5)
    assert state(t, NOW + 10.5) is BreakerState.CLOSED
    assert all(t.allow(KEY, NOW + 10.5) for _ in range(5))
    # Closed again from scratch: it takes the full run of failures to reopen, base cooldown.
    record(t, Outcome.FAILURE, NOW + 11, 2)
    assert t.allow(KEY, NOW + 11)
    record(t, Outcome.FAILURE, NOW + 11)
    assert not t.allow(KEY, NOW + 20.9)
    assert t.allow(KEY, NOW + 21)


def test_failed_probe_reopens_with_doubled_cooldown_capped_at_eight_times() -> None:
    t = breaker(cooldown=10)
    record(t, Outcome.FAILURE, NOW, 3)
    opened = NOW
    for cooldown in (10, 20, 40, 80, 80, 80):
        assert not t.allow(KEY, opened + cooldown - 0.1), cooldown
        assert state(t, opened + cooldown - 0.1) is BreakerState.OPEN
        probe_at = opened + cooldown
        assert t.allow(KEY, probe_at), cooldown
        record(t, Outcome.FAILURE, probe_at)  # the probe fails
        assert state(t, probe_at) is BreakerState.OPEN
        opened = probe_at


def test_refused_probe_closes_the_breaker_without_touching_uptime() -> None:
    t = breaker()
    record(t, Outcome.FAILURE, NOW, 3)
    assert t.allow(KEY, NOW + 10)
    t.responded(KEY, NOW + 10.5)  # the probe got a 4xx: the endpoint is up
    assert state(t, NOW + 10.5) is BreakerState.CLOSED
    assert t.allow(KEY, NOW + 10.5)
    snap = t.snapshot(KEY, NOW + 10.5)
    assert snap.uptime_5m == 0.0 and snap.recent_requests == 3


def test_rate_limited_probe_does_not_wedge_the_breaker() -> None:
    t = breaker()
    record(t, Outcome.FAILURE, NOW, 3)
    assert t.allow(KEY, NOW + 10)  # the probe goes out ...
    record(t, Outcome.RATE_LIMITED, NOW + 10.5)  # ... and is rate limited
    # Whatever the policy for a 429 probe, the endpoint must be probed again some time.
    assert any(t.allow(KEY, NOW + 10 + s) for s in (60, 600, 3600, 86_400))


def test_in_flight_failures_while_open_do_not_escalate_the_cooldown() -> None:
    t = breaker(failures=3, cooldown=10)
    record(t, Outcome.FAILURE, NOW, 3)  # opens: base cooldown 10 s
    record(t, Outcome.FAILURE, NOW + 1, 4)  # stragglers sent before it opened, no probe
    # At most the base cooldown after the last failure, the endpoint gets its probe.
    assert t.allow(KEY, NOW + 11)
