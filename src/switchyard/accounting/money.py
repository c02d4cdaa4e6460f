"""Money: Decimal USD in code, integer picodollars (1e-12 USD) in storage.

Integers make every sum in SQL exact on SQLite and PostgreSQL alike. Catalog prices have at
most 12 decimal places (checked at load), so token costs are whole picodollars and the
conversion below never rounds a real cost.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

PICO = Decimal("1e12")
ZERO = Decimal(0)


def to_pico(usd: Decimal) -> int:
    """USD to picodollars, rounding up: a fraction of a picodollar is still owed."""
    return int((usd * PICO).to_integral_value(rounding=ROUND_CEILING))


def from_pico(pico: int) -> Decimal:
    if not pico:
        return ZERO
    value = (Decimal(pico) / PICO).normalize()
    # normalize() writes whole amounts with an exponent (100 -> 1E+2); keep them plain.
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def usd_number(pico: int) -> Decimal:
    """For the API's JSON numbers: the exact decimal, without trailing zeros."""
    return from_pico(pico)
