"""Usage windows: UTC days, weeks starting Monday, calendar months."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Periods:
    day: str
    week: str
    month: str

    @classmethod
    def at(cls, moment: dt.datetime) -> Periods:
        return _of_day(moment.astimezone(dt.UTC).date())

    @classmethod
    def now(cls) -> Periods:
        return cls.at(dt.datetime.now(dt.UTC))


@functools.lru_cache(maxsize=64)
def _of_day(day: dt.date) -> Periods:
    """Per UTC day, computed once: every request of the day settles into the same windows."""
    monday = day - dt.timedelta(days=day.weekday())
    return Periods(day.isoformat(), monday.isoformat(), day.strftime("%Y-%m"))
