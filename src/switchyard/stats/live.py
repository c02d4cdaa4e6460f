"""Live figures from the health tracker, per endpoint and summarised per model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from switchyard.catalog.schema import Endpoint
from switchyard.routing.health import EndpointHealth, HealthTracker
from switchyard.wire.models import ModelOut

# /models sorts that order by what the endpoints measured, best first; unmeasured models last.
SPEED_SORTS = frozenset({"throughput-high-to-low", "latency-low-to-high"})


@dataclass(frozen=True, slots=True)
class ModelSpeed:
    """The best measured endpoint of a model: what the /models sorts compare."""

    throughput_p50: float | None  # output tokens per second
    latency_p50: float | None  # seconds to first token


def snapshots(
    tracker: HealthTracker, endpoints: Iterable[Endpoint], now: float | None = None
) -> dict[str, EndpointHealth]:
    moment = time.monotonic() if now is None else now
    return {e.key: tracker.snapshot(e.key, moment) for e in endpoints}


def model_speed(health: Iterable[EndpointHealth]) -> ModelSpeed:
    health = list(health)
    throughputs = [h.throughput.p50 for h in health if h.throughput is not None]
    latencies = [h.latency.p50 for h in health if h.latency is not None]
    return ModelSpeed(
        throughput_p50=max(throughputs, default=None), latency_p50=min(latencies, default=None)
    )


def average_uptime(health: Iterable[EndpointHealth]) -> float | None:
    """Mean of the endpoints' last-day uptime, over the endpoints that have one."""
    values = [h.uptime_1d for h in health if h.uptime_1d is not None]
    return round(sum(values) / len(values), 2) if values else None


def model_speeds(
    models: Iterable[ModelOut],
    tracker: HealthTracker,
    endpoints_of: Callable[[str], Iterable[Endpoint]],
) -> dict[str, ModelSpeed]:
    now = time.monotonic()
    return {m.id: model_speed(snapshots(tracker, endpoints_of(m.id), now).values()) for m in models}


def sort_by_speed(
    models: list[ModelOut], sort: str, speeds: dict[str, ModelSpeed]
) -> list[ModelOut]:
    """``models`` by their best endpoint's measured throughput (fastest first) or time to
    first token (lowest first), as ``sort`` (one of SPEED_SORTS) asks."""
    if sort == "throughput-high-to-low":
        return sorted(models, key=lambda m: -(speeds[m.id].throughput_p50 or -1.0))
    return sorted(models, key=lambda m: speeds[m.id].latency_p50 or float("inf"))
