"""Time windows a condition may carry, the shopping holidays, and their resolution into UTC intervals.

Day boundaries are the shop's: a window covers whole calendar days in the shop's timezone, turned
into aware UTC datetimes, so "Black Friday" means the merchant's Black Friday, not UTC's.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

HOLIDAY_LABELS: dict[str, str] = {
    "black_friday_cyber_monday": "Black Friday to Cyber Monday",
    "christmas": "Christmas",
    "valentines": "Valentine's Day",
    "mothers_day": "Mother's Day",
}
HOLIDAYS: tuple[str, ...] = tuple(HOLIDAY_LABELS)


@dataclass(frozen=True)
class LastDays:
    """From midnight (shop time) `days` days before today up to now."""

    days: int


@dataclass(frozen=True)
class Between:
    """Calendar dates from `start` through `end`, both included."""

    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class Months:
    """The chosen calendar months (a season) among the last `years` * 12 months, this one included."""

    months: tuple[int, ...]
    years: int = 1


@dataclass(frozen=True)
class Holiday:
    """The `years` most recent occurrences of a shopping holiday that have begun, the current one included."""

    holiday: str
    years: int = 1


Window = LastDays | Between | Months | Holiday
Interval = tuple[dt.datetime, dt.datetime]


def holiday_windows(year: int) -> dict[str, tuple[dt.date, dt.date]]:
    """The shopping holidays of `year` as inclusive (first day, last day) pairs of calendar dates.

    The same rules as the store generator's (devstore/personas.py), copied because app
    code never imports devstore; a test holds the two to the same dates. Black Friday-Cyber Monday:
    the Friday after US Thanksgiving (4th Thursday of November) through the following Monday.
    Christmas: Dec 1-24. Valentine's: Feb 1-14. Mother's Day: the two weeks before US Mother's Day
    (2nd Sunday of May), not including the day itself.
    """
    nov1 = dt.date(year, 11, 1)
    thanksgiving = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    may1 = dt.date(year, 5, 1)
    mothers_day = may1 + dt.timedelta(days=(6 - may1.weekday()) % 7 + 7)
    return {
        "valentines": (dt.date(year, 2, 1), dt.date(year, 2, 14)),
        "mothers_day": (mothers_day - dt.timedelta(days=14), mothers_day - dt.timedelta(days=1)),
        "black_friday_cyber_monday": (thanksgiving + dt.timedelta(days=1), thanksgiving + dt.timedelta(days=4)),
        "christmas": (dt.date(year, 12, 1), dt.date(year, 12, 24)),
    }


def resolve_window(window: Window, *, now: dt.datetime, tz: str) -> list[Interval]:
    """The half-open [start, end) UTC intervals `window` covers at `now` for a shop in `tz`.

    Intervals come back in order and never overlap. Only a LastDays window stops at `now`; a
    holiday, month or date range in progress is given whole (nothing a rule counts lies ahead).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    match window:
        case LastDays(days=days):
            return [(_midnight(today - dt.timedelta(days=days), zone), now.astimezone(dt.UTC))]
        case Between(start=start, end=end):
            return [_days(start, end, zone)]
        case Months(months=months, years=years):
            return _months(set(months), years, today, zone)
        case Holiday(holiday=name, years=years):
            return _holidays(name, years, today, zone)
    raise TypeError(f"not a window: {window!r}")


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    # fold=0 puts a midnight skipped by a DST jump at the jump itself, which is when that day began.
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def _days(first: dt.date, last: dt.date, zone: ZoneInfo) -> Interval:
    return _midnight(first, zone), _midnight(last + dt.timedelta(days=1), zone)


def _months(months: set[int], years: int, today: dt.date, zone: ZoneInfo) -> list[Interval]:
    # Count back over whole months rather than calendar years, so a season that wraps the new year
    # (December to February) comes out as one contiguous stretch.
    intervals: list[Interval] = []
    index = today.year * 12 + today.month - 1
    for i in range(index - years * 12 + 1, index + 1):
        year, month0 = divmod(i, 12)
        if month0 + 1 not in months:
            continue
        start = _midnight(dt.date(year, month0 + 1, 1), zone)
        next_year, next_month0 = divmod(i + 1, 12)
        end = _midnight(dt.date(next_year, next_month0 + 1, 1), zone)
        if intervals and intervals[-1][1] == start:
            intervals[-1] = (intervals[-1][0], end)
        else:
            intervals.append((start, end))
    return intervals


def _holidays(name: str, years: int, today: dt.date, zone: ZoneInfo) -> list[Interval]:
    occurrences: list[tuple[dt.date, dt.date]] = []
    year = today.year
    while len(occurrences) < years:
        first, last = holiday_windows(year)[name]
        if first <= today:
            occurrences.append((first, last))
        year -= 1
    return [_days(first, last, zone) for first, last in reversed(occurrences)]
