"""The windows the pages count over: the last day, week or month of UTC days."""

from __future__ import annotations

import datetime as dt
from typing import Literal

Period = Literal["day", "week", "month"]
PERIOD_DAYS: dict[Period, int] = {"day": 1, "week": 7, "month": 30}


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def first_day(period: Period, end: dt.date) -> dt.date:
    """The first UTC day of ``period`` ending with (and including) ``end``."""
    return end - dt.timedelta(days=PERIOD_DAYS[period] - 1)


def days_between(first: dt.date, last: dt.date) -> list[str]:
    """Every day from ``first`` to ``last`` inclusive, as ISO dates (for gap-free charts)."""
    return [
        (first + dt.timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)
    ]
