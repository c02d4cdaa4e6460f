"""Usage windows: UTC days, weeks starting on Monday, calendar months."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from switchyard.accounting.periods import Periods

UTC = dt.UTC


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    micro: int = 0,
    *,
    tz: dt.tzinfo = UTC,
) -> Periods:
    return Periods.at(dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz))


def test_sunday_last_minute_is_still_the_old_week() -> None:
    assert dt.date(2024, 6, 9).weekday() == 6  # a Sunday
    assert at(2024, 6, 9, 23, 59) == Periods("2024-06-09", "2024-06-03", "2024-06")
    assert at(2024, 6, 9, 23, 59, 59, 999_999).week == "2024-06-03"


def test_monday_midnight_starts_a_new_week() -> None:
    assert at(2024, 6, 10, 0, 0) == Periods("2024-06-10", "2024-06-10", "2024-06")


def test_every_day_of_a_week_shares_its_monday() -> None:
    weeks = {at(2024, 6, 10 + offset, 12).week for offset in range(7)}
    assert weeks == {"2024-06-10"}
    assert at(2024, 6, 17, 0).week == "2024-06-17"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # end of a 31-day month; the week runs on across it
        (
            Periods("2024-01-31", "2024-01-29", "2024-01"),
            Periods("2024-02-01", "2024-01-29", "2024-02"),
        ),
        # leap day
        (
            Periods("2024-02-29", "2024-02-26", "2024-02"),
            Periods("2024-03-01", "2024-02-26", "2024-03"),
        ),
        # end of a year: the week starting Monday 2024-12-30 spans it
        (
            Periods("2024-12-31", "2024-12-30", "2024-12"),
            Periods("2025-01-01", "2024-12-30", "2025-01"),
        ),
        # a month ending on a Sunday: day, week and month all change together
        (
            Periods("2024-06-30", "2024-06-24", "2024-06"),
            Periods("2024-07-01", "2024-07-01", "2024-07"),
        ),
    ],
)
def test_month_boundaries(before: Periods, after: Periods) -> None:
    first = dt.datetime.fromisoformat(after.day).replace(tzinfo=UTC)
    assert Periods.at(first - dt.timedelta(microseconds=1)) == before
    assert Periods.at(first) == after


def test_aware_datetimes_are_converted_to_utc() -> None:
    # 01:30 on Monday in UTC+2 is 23:30 on Sunday in UTC.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert at(2024, 6, 10, 1, 30, tz=plus_two) == Periods("2024-06-09", "2024-06-03", "2024-06")
    # 20:00 on 30 June in UTC-5 is 01:00 on 1 July in UTC: new day, week and month.
    minus_five = dt.timezone(dt.timedelta(hours=-5))
    assert at(2024, 6, 30, 20, tz=minus_five) == Periods("2024-07-01", "2024-07-01", "2024-07")


def test_named_time_zone_is_converted_to_utc() -> None:
    # New York is UTC-5 in winter: 19:30 on 31 Dec is 00:30 on 1 Jan UTC.
    new_york = ZoneInfo("America/New_York")
    assert at(2024, 12, 31, 19, 30, tz=new_york) == Periods("2025-01-01", "2024-12-30", "2025-01")
    assert at(2024, 12, 31, 18, 59, tz=new_york) == Periods("2024-12-31", "2024-12-30", "2024-12")


def test_same_instant_gives_same_periods_in_any_zone() -> None:
    instant = dt.datetime(2024, 3, 31, 23, 45, tzinfo=UTC)
    for hours in (-11, -3, 0, 5, 14):
        zone = dt.timezone(dt.timedelta(hours=hours))
        assert Periods.at(instant.astimezone(zone)) == Periods.at(instant)


def test_now_is_the_current_utc_moment() -> None:
    before = Periods.at(dt.datetime.now(UTC))
    now = Periods.now()
    after = Periods.at(dt.datetime.now(UTC))
    assert now in (before, after)
    assert dt.date.fromisoformat(now.week).weekday() == 0
    assert now.month == now.day[:7]
