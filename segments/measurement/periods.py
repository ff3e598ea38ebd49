"""A measurement period (its first and last shop-local day) read from a request's `start` and
`end`, one way for the pages and the API: the same defaults, limits and words. The API answers a
bad one with a 400 naming the parameter; a page says the same words and shows the default period."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

DATE = r"20[0-9]{2}-[0-9]{2}-[0-9]{2}"      # this century's days (and a valid date)
MAX_DAYS = 366                               # a period of KPIs or moves: a year, leap day included
KPI_DAYS = 90                                # the KPI pages' and series' default period


class PeriodError(ValueError):
    """A `start` or `end` that cannot be used: which one, and why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name, self.message = name, message


def days_before(days: int) -> Callable[[dt.date], dt.date]:
    """A default start: the period is the `days` days that end on its end."""
    return lambda end: end - dt.timedelta(days=days - 1)


def period_day(name: str, raw: str | None, default: dt.date) -> dt.date:
    """The day `raw` names; `default` when the parameter is absent (given but empty is not a day)."""
    if raw is None:
        return default
    try:
        if re.fullmatch(DATE, raw):
            return dt.date.fromisoformat(raw)
    except ValueError:
        pass
    raise PeriodError(name, "must be a date of 2000 to 2099, like 2026-10-31")


def period_read(*, start: str | None, end: str | None, default_end: dt.date,
                default_start: Callable[[dt.date], dt.date], max_days: int | None = MAX_DAYS) -> tuple[dt.date, dt.date]:
    """(first day, last day); PeriodError for an unreadable day, a backwards period or one over `max_days`."""
    last = period_day("end", end, default_end)
    first = period_day("start", start, default_start(last))
    if first > last:
        raise PeriodError("start", "must not be after end")
    if max_days is not None and (last - first).days + 1 > max_days:
        raise PeriodError("start", f"must be at most {max_days} days before end")
    return first, last
