"""Formatting the pages apply to catalog prices, token counts and timings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from switchyard.web import render


def test_prices_per_million_and_thousand() -> None:
    assert render.per_million("0.0000025") == "$2.50"
    assert render.per_million(Decimal("0.00000015")) == "$0.15"
    assert render.per_million("0.000015") == "$15"
    assert render.per_million("0") == "$0"
    assert render.per_million(None) == "—"
    assert render.per_thousand("0.003613") == "$3.613"
    assert render.per_thousand("0") == "—"


def test_compact_numbers_and_dates() -> None:
    assert render.compact(128000) == "128K"
    assert render.compact(7_190_000_000) == "7.19B"
    assert render.compact(183_000_000) == "183M"
    assert render.compact(8) == "8"
    assert render.compact(None) == "—"
    assert render.context(8192) == "8K" and render.context(128000) == "128K"
    assert render.context(1000) == "1K" and render.context(500) == "500"
    assert render.day(dt.date(2024, 5, 13)) == "May 13, 2024"
    assert render.day("2024-07-18T00:00:00Z") == "Jul 18, 2024"
    assert render.seconds(0.25) == "250 ms" and render.seconds(1.5) == "1.50 s"


def test_json_for_script_blocks_cannot_close_the_script() -> None:
    text = str(render.to_json({"label": "</script><script>alert(1)</script>"}))
    assert "</script>" not in text
