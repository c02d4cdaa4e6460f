"""Ordering: price-weighted load balancing, sort, order, variants and soft preferences."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from switchyard.catalog import Catalog, Endpoint, ModelSpec, Pricing, ProviderSpec, load_catalog
from switchyard.catalog.schema import Architecture
from switchyard.errors import InvalidRequest
from switchyard.routing.health import BreakerState, EndpointHealth, Percentiles
from switchyard.routing.order import arrange, blended_price, load_balanced, sort_by, sort_key
from switchyard.routing.plan import Plan, plan
from switchyard.wire.chat import ChatRequest, ProviderPreferences
from switchyard.wire.codec import decode_request

ONE = "acme/one"
TWO = "acme/two"
PARAMS = ["max_tokens", "temperature", "tools", "response_format", "structured_outputs"]


def request(**fields: Any) -> ChatRequest:
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


def endpoint(
    provider: str,
    per_million: str,
    model: str = ONE,
    *,
    completion: str = "0",
    params: list[str] | None = None,
    tag: str | None = None,
) -> Endpoint:
    """An endpoint whose prompt price is ``per_million`` USD per million tokens."""
    pricing = Pricing(
        prompt=Decimal(per_million) / 1_000_000, completion=Decimal(completion) / 1_000_000
    )
    return Endpoint(
        model=model,
        provider=provider,
        upstream_model=model,
        context_length=100_000,
        pricing=pricing,
        supported_parameters=params,
        tag=tag,
    )


def model_spec(model_id: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        name=model_id,
        created=dt.date(2024, 1, 1),
        description="",
        context_length=100_000,
        architecture=Architecture(["text"], ["text"], "GPT"),
        supported_parameters=PARAMS,
    )


def catalog_of(*endpoints: Endpoint) -> Catalog:
    providers = {
        e.provider: ProviderSpec(slug=e.provider, name=e.provider.upper(), protocol="openai")
        for e in endpoints
    }
    by_model: dict[str, list[Endpoint]] = {}
    for e in endpoints:
        by_model.setdefault(e.model, []).append(e)
    models = {m: model_spec(m) for m in (ONE, TWO)}
    return Catalog(models=models, providers=providers, endpoints=by_model)


def health(
    *,
    failures: int = 0,
    requests: int = 10,
    latency: tuple[float, float] | None = None,
    throughput: tuple[float, float] | None = None,
) -> EndpointHealth:
    """A snapshot; latency/throughput given as (p50, p90) with p75 = p50 and p99 = p90."""

    def pct(values: tuple[float, float] | None) -> Percentiles | None:
        return None if values is None else Percentiles(values[0], values[0], values[1], values[1])

    return EndpointHealth(
        99.0, 99.0, 99.0, failures, requests, pct(latency), pct(throughput), BreakerState.CLOSED
    )


FAILING = health(failures=3, requests=3)


def run(
    req: ChatRequest,
    catalog: Catalog,
    snapshot: dict[str, EndpointHealth] | None = None,
    rng: random.Random | None = None,
) -> Plan:
    available = frozenset(catalog.providers)
    return plan(req, catalog, available, lambda m: 0, None, snapshot, rng)


def providers(result: Plan) -> list[str]:
    return [c.endpoint.tag or c.endpoint.provider for c in result.candidates]


# --- load balancing -----------------------------------------------------------------------------

A, B, C = endpoint("a", "1"), endpoint("b", "2"), endpoint("c", "3")
N = 20_000
# 1/p² for p = 1, 2, 3 is 1 : 1/4 : 1/9, i.e. 36/49, 9/49 and 4/49.
EXPECTED = {"a": 36 / 49, "b": 9 / 49, "c": 4 / 49}
# Binomial standard deviation sqrt(p(1-p)/N) at N = 20,000 is 0.31, 0.27 and 0.19 percentage
# points; ±1.5 points is over 4.8 standard deviations for each (a false failure for an arbitrary
# seed has probability below 1e-5, and the seed is fixed so the test is deterministic), while
# weighting by 1/p (54.5% / 27.3% / 18.2%) or uniformly (33.3%) misses by more than 9 points.
TOLERANCE = 0.015


def test_blended_price_adds_prompt_and_completion() -> None:
    assert blended_price(endpoint("x", "1", completion="2")) == Decimal("0.000003")


def test_first_pick_frequencies_follow_inverse_square_price() -> None:
    rng = random.Random(20240601)
    firsts: Counter[str] = Counter()
    for _ in range(N):
        ranked = load_balanced([C, A, B], {}, rng)
        firsts[ranked[0].provider] += 1
        # The stable endpoints not picked follow cheapest first.
        rest = [e.provider for e in ranked[1:]]
        assert rest == sorted(rest, key=lambda p: {"a": 1, "b": 2, "c": 3}[p])
        assert len(ranked) == 3
    for name, share in EXPECTED.items():
        assert abs(firsts[name] / N - share) < TOLERANCE, (name, firsts[name] / N, share)


def test_load_balancing_through_plan() -> None:
    catalog = catalog_of(C, A, B)
    req = request(model=ONE)
    rng = random.Random(7)
    draws = 4_000
    firsts = Counter(providers(run(req, catalog, rng=rng))[0] for _ in range(draws))
    # N = 4,000: standard deviations 0.70 / 0.61 / 0.43 points; ±3 points is over 4.2 of them.
    for name, share in EXPECTED.items():
        assert abs(firsts[name] / draws - share) < 0.03, (name, firsts[name] / draws)
    assert run(req, catalog, rng=rng).strategy == "load_balance"


def test_seeded_rng_is_reproducible() -> None:
    first = [load_balanced([A, B, C], {}, random.Random(3))[0].provider for _ in range(20)]
    again = [load_balanced([A, B, C], {}, random.Random(3))[0].provider for _ in range(20)]
    assert first == again


def test_openrouter_doc_example_outage_goes_last() -> None:
    # A $1, B $2 with recent outages, C $3: B is tried last; A is 9x as likely as C to be
    # first (1/1² : 1/3²), and whichever of A and C is not first comes second.
    snapshot = {B.key: FAILING}
    rng = random.Random(11)
    orders: Counter[tuple[str, ...]] = Counter()
    for _ in range(N):
        orders[tuple(e.provider for e in load_balanced([A, B, C], snapshot, rng))] += 1
    assert set(orders) == {("a", "c", "b"), ("c", "a", "b")}
    # sd of the share at p = 0.9, N = 20,000 is 0.21 points; ±1.5 points is 7 sd.
    assert abs(orders[("a", "c", "b")] / N - 0.9) < TOLERANCE


def test_all_failing_are_cheapest_first_without_randomness() -> None:
    snapshot = {e.key: FAILING for e in (A, B, C)}
    for seed in range(20):
        assert load_balanced([C, B, A], snapshot, random.Random(seed)) == [A, B, C]


def test_open_breaker_counts_as_recently_failing() -> None:
    opened = EndpointHealth(None, None, None, 0, 0, None, None, BreakerState.OPEN)
    for seed in range(20):
        assert load_balanced([A, B], {A.key: opened}, random.Random(seed)) == [B, A]


def test_free_endpoint_has_finite_weight_and_wins() -> None:
    free = endpoint("free", "0")
    rng = random.Random(5)
    for _ in range(1000):
        assert load_balanced([A, free], {}, rng)[0] is free


# --- sort ---------------------------------------------------------------------------------------


def test_sort_key_price_ties_keep_order() -> None:
    x, y, z = endpoint("x", "2"), endpoint("y", "1"), endpoint("z", "2")
    assert sorted([x, y, z], key=sort_key("price", {})) == [y, x, z]


def test_sort_by_throughput_unmeasured_last_price_breaks_ties() -> None:
    fast, slow = endpoint("fast", "5"), endpoint("slow", "1")
    tie_cheap, tie_dear = endpoint("tc", "1"), endpoint("td", "4")
    never_cheap, never_dear = endpoint("nc", "0.5"), endpoint("nd", "3")
    snapshot = {
        fast.key: health(throughput=(200, 150)),
        slow.key: health(throughput=(20, 10)),
        tie_cheap.key: health(throughput=(100, 90)),
        tie_dear.key: health(throughput=(100, 90)),
    }
    got = sorted(
        [never_dear, tie_dear, slow, never_cheap, fast, tie_cheap],
        key=sort_key("throughput", snapshot),
    )
    assert got == [fast, tie_cheap, tie_dear, slow, never_cheap, never_dear]


def test_sort_by_latency_unmeasured_last_price_breaks_ties() -> None:
    quick, lazy = endpoint("quick", "9"), endpoint("lazy", "1")
    tie_cheap, tie_dear = endpoint("tc", "1"), endpoint("td", "4")
    never = endpoint("never", "0.1")
    snapshot = {
        quick.key: health(latency=(0.2, 0.5)),
        lazy.key: health(latency=(3.0, 4.0)),
        tie_dear.key: health(latency=(1.0, 2.0)),
        tie_cheap.key: health(latency=(1.0, 2.0)),
    }
    got = sorted([never, lazy, tie_dear, quick, tie_cheap], key=sort_key("latency", snapshot))
    assert got == [quick, tie_cheap, tie_dear, lazy, never]


def test_sort_in_plan_disables_load_balancing() -> None:
    catalog = catalog_of(C, A, B)
    for seed in range(10):
        result = run(
            request(model=ONE, provider={"sort": "price"}), catalog, rng=random.Random(seed)
        )
        assert providers(result) == ["a", "b", "c"]
        assert result.strategy == "sort:price"
    # A failing endpoint is not demoted by a sort: the client asked for that order.
    result = run(request(model=ONE, provider={"sort": "price"}), catalog, {A.key: FAILING})
    assert providers(result) == ["a", "b", "c"]


def test_sort_object_and_exacto() -> None:
    catalog = catalog_of(C, A, B)
    snapshot = {C.key: health(throughput=(90, 80)), B.key: health(throughput=(50, 40))}
    result = run(request(model=ONE, provider={"sort": {"by": "throughput"}}), catalog, snapshot)
    assert providers(result) == ["c", "b", "a"]
    assert result.strategy == "sort:throughput"
    result = run(request(model=ONE, provider={"sort": "exacto"}), catalog, snapshot)
    assert providers(result) == ["a", "b", "c"]  # without quality data, exacto sorts by price


def _two_models() -> Catalog:
    return catalog_of(
        endpoint("a", "3", ONE),
        endpoint("b", "5", ONE),
        endpoint("c", "1", TWO),
        endpoint("d", "4", TWO),
    )


def test_partition_model_keeps_models_in_order() -> None:
    result = run(request(model=ONE, models=[TWO], provider={"sort": "price"}), _two_models())
    assert providers(result) == ["a", "b", "c", "d"]


def test_partition_none_ranks_across_models() -> None:
    sort = {"by": "price", "partition": "none"}
    result = run(request(model=ONE, models=[TWO], provider={"sort": sort}), _two_models())
    assert providers(result) == ["c", "a", "d", "b"]
    assert [c.model.id for c in result.candidates] == [TWO, ONE, TWO, ONE]
    assert all(c.endpoint.model == c.model.id for c in result.candidates)
    assert result.strategy == "sort:price"


def test_partition_none_without_fallbacks_keeps_the_single_best() -> None:
    sort = {"by": "price", "partition": "none"}
    req = request(model=ONE, models=[TWO], provider={"sort": sort, "allow_fallbacks": False})
    assert providers(run(req, _two_models())) == ["c"]


# --- variants -----------------------------------------------------------------------------------


def test_nitro_variant_sorts_by_throughput() -> None:
    catalog = load_catalog()
    gpt4o = "openai/gpt-4o"
    snapshot = {
        f"{gpt4o}@openai": health(throughput=(40, 30)),
        f"{gpt4o}@azure": health(throughput=(120, 100)),
    }
    for seed in range(5):
        result = plan(
            request(model=f"{gpt4o}:nitro"),
            catalog,
            {"openai", "azure"},
            lambda m: 0,
            None,
            snapshot,
            random.Random(seed),
        )
        assert providers(result) == ["azure", "openai"]
        assert result.strategy == "sort:throughput"
        assert all(c.model.id == gpt4o for c in result.candidates)


def test_floor_variant_sorts_by_price_and_overrides_sort() -> None:
    catalog = catalog_of(C, A, B)
    snapshot = {C.key: health(throughput=(500, 400))}
    req = request(model=f"{ONE}:floor", provider={"sort": "throughput"})
    for seed in range(5):
        result = run(req, catalog, snapshot, random.Random(seed))
        assert providers(result) == ["a", "b", "c"]
        assert result.strategy == "sort:price"


def test_sort_by_helper() -> None:
    none = ProviderPreferences()
    assert sort_by(none, None) == (None, "model")
    assert sort_by(none, "nitro") == ("throughput", "model")
    assert sort_by(none, "floor") == ("price", "model")


@pytest.mark.parametrize("model", ["openai/gpt-4o:turbo", "openai/gpt-4o:", "openai/nope:nitro"])
def test_unknown_variant_or_model_is_invalid(model: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        plan(request(model=model), load_catalog(), {"openai"}, lambda m: 0)
    assert info.value.field == "model"
    assert model in info.value.message


def test_unknown_variant_in_models_list_names_the_entry() -> None:
    with pytest.raises(InvalidRequest) as info:
        plan(
            request(model="openai/gpt-4o", models=["openai/gpt-4o:slow"]),
            load_catalog(),
            {"openai"},
            lambda m: 0,
        )
    assert info.value.field == "models[0]"


# --- order and allow_fallbacks -------------------------------------------------------------------


def _four() -> Catalog:
    return catalog_of(
        endpoint("a", "1"),
        endpoint("b", "2"),
        endpoint("c", "3"),
        endpoint("b", "2.5", tag="b/eu"),
    )


def test_order_puts_listed_providers_first_then_cheapest() -> None:
    result = run(request(model=ONE, provider={"order": ["c", "b/eu"]}), _four())
    assert providers(result) == ["c", "b/eu", "a", "b"]
    assert result.strategy == "order"


def test_order_base_slug_takes_every_variant_cheapest_first() -> None:
    result = run(request(model=ONE, provider={"order": ["B", "a"]}), _four())
    assert providers(result) == ["b", "b/eu", "a", "c"]


def test_order_without_fallbacks_is_only_the_list() -> None:
    req = request(model=ONE, provider={"order": ["c", "a"], "allow_fallbacks": False})
    assert providers(run(req, _four())) == ["c", "a"]


def test_no_fallbacks_without_order_keeps_the_first_pick() -> None:
    req = request(model=ONE, provider={"allow_fallbacks": False})
    rng = random.Random(1)
    firsts = Counter(providers(run(req, _four(), rng=rng))[0] for _ in range(400))
    assert all(len(run(req, _four(), rng=rng).candidates) == 1 for _ in range(20))
    # Still load balanced: the pick is not always the cheapest.
    assert firsts["a"] > 200 and len(firsts) > 1


# --- soft preferences -----------------------------------------------------------------------------

# Price order a, b, c, d; each endpoint's (p50, p90).
_SOFT = catalog_of(endpoint("a", "1"), endpoint("b", "2"), endpoint("c", "3"), endpoint("d", "4"))
_TPUT = {
    f"{ONE}@a": health(throughput=(10, 120)),
    f"{ONE}@b": health(throughput=(80, 90)),
    f"{ONE}@d": health(throughput=(60, 150)),
}
_LAT = {
    f"{ONE}@a": health(latency=(0.5, 3.0)),
    f"{ONE}@b": health(latency=(2.0, 2.5)),
    f"{ONE}@d": health(latency=(1.0, 1.5)),
}


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (50, ["b", "d", "a", "c"]),  # a number is a p50 cutoff; c is unmeasured
        ({"p90": 100}, ["a", "d", "b", "c"]),
        ({"p50": 50, "p90": 100}, ["d", "a", "b", "c"]),  # every percentile must hold
        (80, ["b", "a", "c", "d"]),  # at the cutoff counts as meeting it
        (1000, ["a", "b", "c", "d"]),  # nobody meets it: order unchanged, nobody excluded
    ],
)
def test_preferred_min_throughput(cutoff: object, expected: list[str]) -> None:
    req = request(model=ONE, provider={"sort": "price", "preferred_min_throughput": cutoff})
    assert providers(run(req, _SOFT, _TPUT)) == expected


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (1.0, ["a", "d", "b", "c"]),  # p50 at most 1 s, inclusive
        ({"p90": 2.5}, ["b", "d", "a", "c"]),
        ({"p50": 1, "p90": 2}, ["d", "a", "b", "c"]),
        (0.1, ["a", "b", "c", "d"]),
    ],
)
def test_preferred_max_latency(cutoff: object, expected: list[str]) -> None:
    req = request(model=ONE, provider={"sort": "price", "preferred_max_latency": cutoff})
    assert providers(run(req, _SOFT, _LAT)) == expected


def test_preferred_throughput_reorders_load_balanced_plan_without_excluding() -> None:
    req = request(model=ONE, provider={"preferred_min_throughput": 50})
    for seed in range(30):
        got = providers(run(req, _SOFT, _TPUT, random.Random(seed)))
        assert sorted(got[:2]) == ["b", "d"] and sorted(got[2:]) == ["a", "c"]


_TOOLS = catalog_of(
    endpoint("a", "1", params=["temperature"]),
    endpoint("b", "2", params=["tools", "temperature"]),
    endpoint("c", "3", params=["temperature"]),
    endpoint("d", "4", params=["tools", "response_format"]),
)
TOOL = [{"type": "function", "function": {"name": "lookup"}}]


def test_tools_preference_puts_tool_capable_endpoints_first() -> None:
    req = request(model=ONE, tools=TOOL, provider={"sort": "price"})
    assert providers(run(req, _TOOLS)) == ["b", "d", "a", "c"]


def test_tools_preference_without_capable_endpoints_changes_nothing() -> None:
    catalog = catalog_of(endpoint("a", "1", params=[]), endpoint("c", "3", params=["seed"]))
    req = request(model=ONE, tools=TOOL, provider={"sort": "price"})
    assert providers(run(req, catalog)) == ["a", "c"]


def test_empty_tools_list_is_no_preference() -> None:
    req = request(model=ONE, tools=[], provider={"sort": "price"})
    assert providers(run(req, _TOOLS)) == ["a", "b", "c", "d"]


def test_response_format_preference() -> None:
    req = request(model=ONE, response_format={"type": "json_object"}, provider={"sort": "price"})
    assert providers(run(req, _TOOLS)) == ["d", "a", "b", "c"]


def test_tools_preference_under_load_balancing() -> None:
    req = request(model=ONE, tools=TOOL)
    for seed in range(30):
        got = providers(run(req, _TOOLS, rng=random.Random(seed)))
        assert sorted(got[:2]) == ["b", "d"]


def test_weights_are_inverse_square_not_inverse() -> None:
    # Two endpoints, price 1 and 3: 1/p² gives 90% to the cheap one, 1/p would give 75%.
    rng = random.Random(99)
    cheap = sum(load_balanced([A, C], {}, rng)[0] is A for _ in range(N)) / N
    assert math.isclose(cheap, 0.9, abs_tol=TOLERANCE)


def test_preferences_do_not_lift_a_failing_endpoint_above_healthy_ones() -> None:
    catalog = load_catalog()
    fast_but_failing, slow = catalog.endpoints_for("openai/gpt-4o")
    fast = Percentiles(500.0, 500.0, 500.0, 500.0)
    crawl = Percentiles(5.0, 5.0, 5.0, 5.0)
    health = {
        fast_but_failing.key: EndpointHealth(
            50.0, 50.0, 50.0, 5, 6, None, fast, BreakerState.CLOSED
        ),
        slow.key: EndpointHealth(100.0, 100.0, 100.0, 0, 9, None, crawl, BreakerState.CLOSED),
    }
    request = decode_request(
        b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}],'
        b' "provider": {"preferred_min_throughput": 100}}',
        ChatRequest,
    )
    assert isinstance(request.provider, ProviderPreferences)
    ranked, strategy = arrange(
        [fast_but_failing, slow],
        request,
        request.provider,
        catalog,
        health,
        random.Random(1),
        None,
    )
    assert strategy == "load_balance"
    assert ranked == [slow, fast_but_failing]
