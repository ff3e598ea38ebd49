"""How measurement pages write numbers and draw lines: money in the shop's currency, rates in
percent and their differences in points, round axis ticks, dates along x, one colour per line."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segments.measurement.kpis import MAX_SERIES
from segments.web import measurement_format as fmt
from segments.web.pages.charts import PALETTE, day_ticks, line_chart, nice_ticks


@pytest.mark.parametrize("value, currency, shown", [
    (Decimal("1234.5"), "USD", "$1,234.50"), (0, "USD", "$0.00"), (-12.345, "USD", "−$12.35"),
    (1234.5, "EUR", "€1,234.50"), (99.99, "CAD", "CA$99.99"), (1500, "JPY", "¥1,500"),
    (1234.5, "CHF", "1,234.50 CHF"), (None, "USD", "—"),
])
def test_money_is_written_in_the_shops_currency(value, currency, shown):
    assert fmt.money(value, currency) == shown


def test_signed_money_and_rates_in_percent_and_points():
    assert fmt.money(3.2, "USD", signed=True) == "+$3.20" and fmt.money(-3.2, "USD", signed=True) == "−$3.20"
    assert fmt.rate(0.0363) == "3.6%" and fmt.rate(0.0363, decimals=2) == "3.63%" and fmt.rate(None) == "—"
    assert fmt.points(0.012) == "+1.2 pts" and fmt.points(-0.2255) == "−22.6 pts" and fmt.points(0) == "0.0 pts"
    assert fmt.change(0.125) == "+12%" and fmt.change(-0.93) == "−93%" and fmt.change(None) == "—"
    assert fmt.change(-0.004) == "0%" and fmt.points(-0.0001) == "0.0 pts" and fmt.money(-0.001, "USD") == "$0.00"
    assert fmt.count(12345) == "12,345"


@pytest.mark.parametrize("low, high, ticks, step", [
    (0, 80, [0, 20, 40, 60, 80], 20), (0, 73, [0, 20, 40, 60, 80], 20), (0, 0.047, [0, 0.02, 0.04, 0.06], 0.02),
    (0, 1234, [0, 500, 1000, 1500], 500), (0, 0, [0, 0.5, 1.0], 0.5), (-30, 90, [-50, 0, 50, 100], 50),
])
def test_axis_ticks_are_round_and_cover_the_values(low, high, ticks, step):
    got, got_step = nice_ticks(low, high)
    assert got == pytest.approx(ticks) and got_step == pytest.approx(step)


def test_tick_labels_carry_the_unit_and_only_the_decimals_the_step_needs():
    assert [fmt.tick(v, kind="money", currency="USD", step=500) for v in (0, 500, 1500)] == ["$0", "$500", "$1,500"]
    assert fmt.tick(2.5, kind="money", currency="USD", step=0.5) == "$2.50"
    assert [fmt.tick(v, kind="rate", currency="USD", step=0.01) for v in (0, 0.04)] == ["0%", "4%"]
    assert fmt.tick(0.005, kind="rate", currency="USD", step=0.005) == "0.5%"
    assert fmt.tick(12000, kind="count", currency="USD", step=2000) == "12,000"


def test_dates_along_x_start_on_the_first_day_and_stay_few():
    first = dt.date(2026, 9, 7)
    ticks = day_ticks(first, first + dt.timedelta(days=89))
    assert ticks[0] == first and 3 <= len(ticks) <= 6 and len({(b - a).days for a, b in zip(ticks, ticks[1:])}) == 1
    assert day_ticks(first, first) == [first]
    assert len(day_ticks(first, first + dt.timedelta(days=365))) <= 6


def test_a_chart_gives_each_line_its_own_colour_labels_its_axes_and_keeps_an_empty_series_in_place():
    assert len(PALETTE) >= MAX_SERIES and len(set(PALETTE)) == len(PALETTE)
    first = dt.date(2026, 10, 1)
    series = [(f"Segment {i}", [(first + dt.timedelta(days=d), float(i * 10 + d)) for d in range(5)])
              for i in range(MAX_SERIES - 1)] + [("Empty", [])]
    chart = line_chart(title="Revenue", y_label="Revenue per day (USD)", series=series, first=first,
                       last=first + dt.timedelta(days=4), fmt=lambda v, step: fmt.tick(v, kind="money", currency="USD",
                                                                                       step=step or 1))
    assert [line.label for line in chart.lines][-1] == "Empty" and not chart.lines[-1].dots
    assert len({line.color for line in chart.lines}) == MAX_SERIES
    assert [t.label for t in chart.y_ticks][0] == "$0" and chart.y_ticks[-1].label == "$80"   # the top value is 64
    assert [t.label for t in chart.x_ticks] == ["Oct 1", "Oct 2", "Oct 3", "Oct 4", "Oct 5"]
    assert chart.lines[0].dots[0] == (chart.left, chart.bottom)          # (first day, 0) sits on the origin
    assert not chart.empty
    with pytest.raises(ValueError):
        line_chart(title="Too many", y_label="", series=series + [("One more", [])], first=first, last=first,
                   fmt=lambda v, step: str(v))


def test_a_single_day_is_a_dot_and_no_data_is_empty():
    day = dt.date(2026, 10, 1)
    chart = line_chart(title="Members", y_label="Members", series=[("A", [(day, 3.0)])], first=day, last=day,
                       fmt=lambda v, step: f"{v:g}")
    assert chart.lines[0].points == "" and len(chart.lines[0].dots) == 1
    assert line_chart(title="Members", y_label="Members", series=[("A", [])], first=day, last=day,
                      fmt=lambda v, step: f"{v:g}").empty
