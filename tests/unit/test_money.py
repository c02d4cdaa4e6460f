"""Money: Decimal USD <-> integer picodollars, exact for catalog prices, rounding up below."""

from __future__ import annotations

from decimal import Decimal
from functools import cache

import pytest

from switchyard.accounting.money import from_pico, to_pico, usd_number
from switchyard.catalog import load_catalog
from switchyard.wire.codec import encode

D = Decimal


@cache
def catalog_prices() -> list[Decimal]:
    prices: set[Decimal] = set()
    for endpoints in load_catalog().endpoints.values():
        for endpoint in endpoints:
            tiers = [endpoint.pricing, endpoint.pricing.long_context]
            for tier in filter(None, tiers):
                for name in tier.__struct_fields__:
                    value = getattr(tier, name)
                    if isinstance(value, Decimal) and value:
                        prices.add(value)
    return sorted(prices)


@pytest.mark.parametrize(
    ("usd", "pico"),
    [
        (D("0.0000000375"), 37_500),
        (D("0.0000000375") * 1000, 37_500_000),
        (D("0.0000000375") * 128_000, 4_800_000_000),
        (D("0.0000025") * 1000 + D("0.00001") * 16_384, 166_340_000_000),
        (D("0.000000075") * 3, 225_000),
        (D("1"), 10**12),
        (D("0.000000000001"), 1),
        (D("1234567.000000000001"), 1_234_567_000_000_000_001),
    ],
)
def test_exact_amounts_convert_both_ways(usd: Decimal, pico: int) -> None:
    assert to_pico(usd) == pico
    assert type(to_pico(usd)) is int
    assert from_pico(pico) == usd


@pytest.mark.parametrize("tokens", [1, 3, 7, 999, 16_384, 128_000, 2_000_000])
def test_catalog_price_times_tokens_round_trips(tokens: int) -> None:
    prices = catalog_prices()
    assert len(prices) >= 5  # the catalog really was read
    for price in prices:
        cost = price * tokens
        pico = to_pico(cost)
        assert pico == int(cost * 10**12)  # a whole number of picodollars: nothing rounded
        assert from_pico(pico) == cost
        assert to_pico(from_pico(pico)) == pico


@pytest.mark.parametrize(
    ("usd", "pico"),
    [
        (D("1e-13"), 1),
        (D("0.0000000000005"), 1),
        (D("0.0000000000015"), 2),
        (D("0.0000000000020000001"), 3),
        (D("0.1000000000000001"), 100_000_000_001),
        (D("1e-30"), 1),
    ],
)
def test_fractions_of_a_picodollar_round_up(usd: Decimal, pico: int) -> None:
    assert to_pico(usd) == pico


def test_whole_picodollars_are_not_rounded_up() -> None:
    assert to_pico(D("0.000000000002")) == 2
    assert to_pico(D("0.0000000000020000")) == 2
    assert to_pico(D("2E-12")) == 2


@pytest.mark.parametrize("zero", [D(0), D("0.000"), D("0E-12"), D("-0")])
def test_zero(zero: Decimal) -> None:
    assert to_pico(zero) == 0


def test_from_pico_zero_is_decimal_zero() -> None:
    value = from_pico(0)
    assert isinstance(value, Decimal)
    assert value == 0
    assert str(value) == "0"


@pytest.mark.parametrize(
    ("pico", "text"),
    [
        (1, "1E-12"),
        (2_500_000, "0.0000025"),
        (37_500_000, "0.0000375"),
        (166_340_000_000, "0.16634"),
        (500_000_000_000, "0.5"),
        (1_500_000_000_000, "1.5"),
    ],
)
def test_from_pico_drops_trailing_zeros(pico: int, text: str) -> None:
    value = from_pico(pico)
    assert isinstance(value, Decimal)
    assert str(value) == text
    assert usd_number(pico) == value


def test_from_pico_sums_exactly() -> None:
    # What float arithmetic gets wrong (0.1 + 0.2), integer picodollars get right.
    assert from_pico(to_pico(D("0.1")) + to_pico(D("0.2"))) == D("0.3")
    total = sum(to_pico(D("0.0000000375") * n) for n in range(1, 1001))
    assert from_pico(total) == D("0.0000000375") * (1000 * 1001 // 2)


def test_whole_dollar_amounts_print_without_exponent() -> None:
    assert str(from_pico(10 * 10**12)) == "10"
    assert encode({"limit": usd_number(100 * 10**12)}) == b'{"limit":100}'
