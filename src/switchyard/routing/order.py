"""Ordering the endpoints that passed the filters. Pure: health and randomness are inputs.

Default (no ``sort``, no ``order``): price-weighted load balancing. Endpoints without
significant failures in the last 30 seconds come first; one of them is picked at random with
weight 1/price²; the other stable ones follow, cheapest first; recently failing ones go last.
``sort`` (or the ``:nitro`` / ``:floor`` variants) and ``order`` turn load balancing off.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint
from switchyard.routing.filters import matches
from switchyard.routing.health import UNKNOWN, EndpointHealth
from switchyard.wire.chat import ChatRequest, ProviderPreferences, SortConfig

# A free endpoint still needs a finite weight: treat it as costing a millionth of a cent.
_PRICE_FLOOR = Decimal("1e-11")
PERCENTILES = ("p50", "p75", "p90", "p99")


def blended_price(endpoint: Endpoint) -> Decimal:
    return endpoint.pricing.prompt + endpoint.pricing.completion


def load_balanced(
    endpoints: Sequence[Endpoint], health: Mapping[str, EndpointHealth], rng: random.Random
) -> list[Endpoint]:
    stable = [e for e in endpoints if not health.get(e.key, UNKNOWN).recently_failing]
    failing = sorted(
        (e for e in endpoints if health.get(e.key, UNKNOWN).recently_failing), key=blended_price
    )
    if not stable:
        return failing
    if len(stable) == 1:
        first = stable[0]
    else:
        weights = [1 / float(max(blended_price(e), _PRICE_FLOOR)) ** 2 for e in stable]
        first = rng.choices(stable, weights=weights, k=1)[0]
    rest = sorted((e for e in stable if e is not first), key=blended_price)
    return [first, *rest, *failing]


def sort_key(
    by: str, health: Mapping[str, EndpointHealth]
) -> Callable[[Endpoint], tuple[float, Decimal]]:
    """Lower is better; unmeasured endpoints sort after measured ones; price breaks ties."""

    def key(endpoint: Endpoint) -> tuple[float, Decimal]:
        stats = health.get(endpoint.key, UNKNOWN)
        price = blended_price(endpoint)
        if by == "throughput":
            return (-stats.throughput.p50 if stats.throughput else float("inf"), price)
        if by == "latency":
            return (stats.latency.p50 if stats.latency else float("inf"), price)
        return (0.0, price)

    return key


def sort_by(prefs: ProviderPreferences, variant: str | None) -> tuple[str | None, str]:
    """(sort field or None, partition) from the request and the model variant."""
    sort = prefs.sort
    by: str | None = None
    partition = "model"
    if isinstance(sort, str):
        by = sort
    elif isinstance(sort, SortConfig):
        by = sort.by if isinstance(sort.by, str) else None
        if isinstance(sort.partition, str):
            partition = sort.partition
    if variant == "nitro":
        by = "throughput"
    elif variant == "floor":
        by = "price"
    if by == "exacto":  # OpenRouter's tool-calling quality sort; without its data, price
        by = "price"
    return by, partition


def meets(stats: EndpointHealth, threshold: object, kind: str) -> bool:
    """Does an endpoint meet a preferred_min_throughput / preferred_max_latency cutoff?

    A number applies to p50; an object gives cutoffs per percentile, all of which must hold.
    Endpoints never measured do not meet a cutoff (they are tried after those that do).
    """
    measured = stats.throughput if kind == "throughput" else stats.latency
    if measured is None:
        return False
    cutoffs = {"p50": threshold} if isinstance(threshold, int | float) else threshold
    assert isinstance(cutoffs, dict)
    for name, cutoff in cutoffs.items():
        if name not in PERCENTILES or not isinstance(cutoff, int | float):
            continue
        value = measured.get(name)
        if (kind == "throughput" and value < cutoff) or (kind == "latency" and value > cutoff):
            return False
    return True


def preferred_first(
    endpoints: list[Endpoint], keep_first: Callable[[Endpoint], bool]
) -> list[Endpoint]:
    """Stable partition: endpoints for which ``keep_first`` holds come first (if any do)."""
    front = [e for e in endpoints if keep_first(e)]
    if not front or len(front) == len(endpoints):
        return endpoints
    return front + [e for e in endpoints if not keep_first(e)]


def arrange(
    endpoints: list[Endpoint],
    request: ChatRequest,
    prefs: ProviderPreferences,
    catalog: Catalog,
    health: Mapping[str, EndpointHealth],
    rng: random.Random,
    by: str | None,
) -> tuple[list[Endpoint], str]:
    """One group's order, and the name of the strategy that produced it."""
    order = prefs.order if isinstance(prefs.order, list) and prefs.order else None
    if by is not None:
        ranked = sorted(endpoints, key=sort_key(by, health))
        strategy = f"sort:{by}"
    elif order is not None:
        ranked = sorted(endpoints, key=blended_price)
        strategy = "order"
    else:
        ranked = load_balanced(endpoints, health, rng)
        strategy = "load_balance"
    if order is not None:
        front: list[Endpoint] = []
        for name in order:
            front.extend(e for e in ranked if e not in front and matches(e, catalog, [name]))
        rest = [e for e in ranked if e not in front]
        ranked = front if prefs.allow_fallbacks is False else front + rest
    elif prefs.allow_fallbacks is False:
        ranked = ranked[:1]
    # Soft preferences: they reorder, never exclude.
    params = request.tools is not UNSET and bool(request.tools)
    if params:
        ranked = preferred_first(ranked, lambda e: "tools" in catalog.endpoint_parameters(e))
    if request.response_format is not UNSET:
        ranked = preferred_first(
            ranked, lambda e: "response_format" in catalog.endpoint_parameters(e)
        )
    throughput = prefs.preferred_min_throughput
    if throughput not in (UNSET, None):
        ranked = preferred_first(
            ranked, lambda e: meets(health.get(e.key, UNKNOWN), throughput, "throughput")
        )
    latency = prefs.preferred_max_latency
    if latency not in (UNSET, None):
        ranked = preferred_first(
            ranked, lambda e: meets(health.get(e.key, UNKNOWN), latency, "latency")
        )
    if strategy == "load_balance":
        # Soft preferences reorder the healthy endpoints; one failing right now still waits
        # until they have been tried, however fast it used to be.
        ranked = preferred_first(ranked, lambda e: not health.get(e.key, UNKNOWN).recently_failing)
    return ranked, strategy
