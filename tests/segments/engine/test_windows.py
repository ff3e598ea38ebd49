"""Windows: holiday dates, shop-timezone day boundaries across DST, seasons and holidays over years."""
import datetime as dt

import pytest

from segments.engine.windows import (
    HOLIDAY_LABELS, HOLIDAYS, Between, Holiday, LastDays, Months, holiday_windows, resolve_window,
)
from devstore import personas

UTC = dt.UTC
NY = "America/New_York"


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_holiday_windows_agree_with_the_store_generator_for_two_centuries():
    for year in range(1950, 2151):
        assert holiday_windows(year) == personas.holiday_windows(year), year


def test_holiday_names_are_the_generators_and_each_has_a_label():
    assert set(HOLIDAYS) == set(personas.holiday_windows(2026)) == set(HOLIDAY_LABELS)


@pytest.mark.parametrize("year, name, first, last", [
    # Thanksgiving 2025 is Nov 27: Black Friday Nov 28, Cyber Monday Dec 1.
    (2025, "black_friday_cyber_monday", dt.date(2025, 11, 28), dt.date(2025, 12, 1)),
    # Thanksgiving 2026 is Nov 26: Black Friday Nov 27, Cyber Monday Nov 30.
    (2026, "black_friday_cyber_monday", dt.date(2026, 11, 27), dt.date(2026, 11, 30)),
    # Mother's Day 2025 is May 11, 2026 is May 10: the two weeks before, the day itself excluded.
    (2025, "mothers_day", dt.date(2025, 4, 27), dt.date(2025, 5, 10)),
    (2026, "mothers_day", dt.date(2026, 4, 26), dt.date(2026, 5, 9)),
    (2025, "christmas", dt.date(2025, 12, 1), dt.date(2025, 12, 24)),
    (2026, "valentines", dt.date(2026, 2, 1), dt.date(2026, 2, 14)),
])
def test_holiday_dates(year, name, first, last):
    assert holiday_windows(year)[name] == (first, last)


def test_last_days_starts_at_shop_midnight_before_a_dst_change_and_ends_now():
    # New York springs forward on 2026-03-08: midnight of the 7th is EST (UTC-5).
    now = utc(2026, 3, 10, 12, 0)
    assert resolve_window(LastDays(3), now=now, tz=NY) == [(utc(2026, 3, 7, 5), now)]
    # The same instant is already the 10th in UTC, and the day boundaries are UTC's.
    assert resolve_window(LastDays(3), now=now, tz="UTC") == [(utc(2026, 3, 7, 0), now)]


def test_last_days_counts_from_the_shops_today_not_utcs():
    # 02:00 UTC on the 10th is still the 9th in New York (EDT, UTC-4).
    now = utc(2026, 3, 10, 2, 0)
    assert resolve_window(LastDays(1), now=now, tz=NY) == [(utc(2026, 3, 8, 5), now)]


def test_a_day_is_23_hours_when_clocks_spring_forward_and_25_when_they_fall_back():
    now = utc(2026, 12, 1)
    [(start, end)] = resolve_window(Between(dt.date(2026, 3, 8), dt.date(2026, 3, 8)), now=now, tz=NY)
    assert (start, end) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert end - start == dt.timedelta(hours=23)
    [(start, end)] = resolve_window(Between(dt.date(2026, 11, 1), dt.date(2026, 11, 1)), now=now, tz=NY)
    assert end - start == dt.timedelta(hours=25)


def test_between_covers_both_dates_whole_even_in_the_future():
    now = utc(2026, 1, 15)
    window = Between(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    assert resolve_window(window, now=now, tz=NY) == [(utc(2026, 1, 1, 5), utc(2026, 2, 1, 5))]


def test_holiday_in_progress_is_the_current_occurrence_given_whole():
    now = utc(2026, 11, 28, 15, 0)            # Saturday of the 2026 weekend
    assert resolve_window(Holiday("black_friday_cyber_monday"), now=now, tz=NY) == [
        (utc(2026, 11, 27, 5), utc(2026, 12, 1, 5))]


def test_holiday_counts_as_begun_from_the_shops_midnight_of_its_first_day():
    bfcm_2026 = (utc(2026, 11, 27, 5), utc(2026, 12, 1, 5))
    assert resolve_window(Holiday("black_friday_cyber_monday"), now=bfcm_2026[0], tz=NY) == [bfcm_2026]
    before = bfcm_2026[0] - dt.timedelta(microseconds=1)
    assert resolve_window(Holiday("black_friday_cyber_monday"), now=before, tz=NY) != [bfcm_2026]


def test_holiday_not_yet_begun_in_the_shops_timezone_is_last_years():
    # 03:00 UTC on Black Friday 2026 is still Thanksgiving evening in New York.
    now = utc(2026, 11, 27, 3, 0)
    assert resolve_window(Holiday("black_friday_cyber_monday"), now=now, tz=NY) == [
        (utc(2025, 11, 28, 5), utc(2025, 12, 2, 5))]
    assert resolve_window(Holiday("black_friday_cyber_monday"), now=now, tz="UTC") == [
        (utc(2026, 11, 27), utc(2026, 12, 1))]


def test_holiday_over_several_years_oldest_first():
    now = utc(2026, 6, 1)
    assert resolve_window(Holiday("mothers_day", years=3), now=now, tz="UTC") == [
        (utc(2024, 4, 28), utc(2024, 5, 12)),
        (utc(2025, 4, 27), utc(2025, 5, 11)),
        (utc(2026, 4, 26), utc(2026, 5, 10)),
    ]


def test_a_season_across_new_year_is_one_stretch():
    now = utc(2026, 3, 10)
    assert resolve_window(Months((1, 2, 12)), now=now, tz=NY) == [(utc(2025, 12, 1, 5), utc(2026, 3, 1, 5))]
    assert resolve_window(Months((1, 2, 12), years=2), now=now, tz=NY) == [
        (utc(2024, 12, 1, 5), utc(2025, 3, 1, 5)),
        (utc(2025, 12, 1, 5), utc(2026, 3, 1, 5)),
    ]


def test_months_include_the_current_month_and_not_the_year_before_it():
    now = utc(2026, 11, 15)
    # The last 12 months are Dec 2025 .. Nov 2026: November 2025 is out, November 2026 in.
    assert resolve_window(Months((11, 12)), now=now, tz="UTC") == [
        (utc(2025, 12, 1), utc(2026, 1, 1)),
        (utc(2026, 11, 1), utc(2026, 12, 1)),
    ]


def test_intervals_are_in_utc():
    now = dt.datetime(2026, 7, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    [(start, end)] = resolve_window(LastDays(30), now=now, tz="Europe/Berlin")
    assert start.utcoffset() == end.utcoffset() == dt.timedelta(0)
    assert end == utc(2026, 7, 1, 10)
    assert start == utc(2026, 5, 31, 22)        # Berlin midnight of June 1st, in summer time


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        resolve_window(LastDays(1), now=dt.datetime(2026, 1, 1), tz="UTC")
