"""Usage windows: UTC days, weeks starting Monday, calendar months."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Periods:
    day: str
    week: str
    month: str

    @classmethod
    def at(cls, moment: dt.datetime) -> Periods:
        day = moment.astimezone(dt.UTC).date()
        monday = day - dt.timedelta(days=day.weekday())
        return cls(day.isoformat(), monday.isoformat(), day.strftime("%Y-%m"))

    @classmethod
    def now(cls) -> Periods:
        return cls.at(dt.datetime.now(dt.UTC))
