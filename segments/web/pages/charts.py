"""Server-drawn SVG geometry for every chart the pages show (no chart library, nothing to load): the
home page's sparklines, the segment page's movement bars and the measurement pages' line charts, all
placed by one `Scale`, with round ticks and distinct colours."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from segments.web.overview import DayMovement

WIDTH, HEIGHT, LABEL_ROOM = 720, 180, 18
SPARK_WIDTH, SPARK_HEIGHT = 120, 28


@dataclass(frozen=True)
class Scale:
    """Values from `low` to `high` onto pixels from `start` to `end` (a y axis runs from its bottom,
    the larger pixel, to its top: SVG's y grows downwards). A range of one value maps to `start`."""
    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return round(self.start + (value - self.low) / ((self.high - self.low) or 1) * (self.end - self.start), 1)


def polyline(points) -> str:
    """SVG polyline points for [(x, y)]."""
    return " ".join(f"{x},{y}" for x, y in points)


# -- sparklines (the home page) -------------------------------------------------------------------
@dataclass(frozen=True)
class Sparkline:
    points: str          # "" when there are fewer than two values: nothing to draw a trend with
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


def sparkline(values) -> Sparkline:
    """`values` (oldest first) across the width, lowest to highest across the height, 1 px margin."""
    if len(values) < 2:
        return Sparkline("")
    x = Scale(0, len(values) - 1, 1, SPARK_WIDTH - 1)
    y = Scale(min(values), max(values), SPARK_HEIGHT - 1, 1)
    return Sparkline(polyline((x(i), y(v)) for i, v in enumerate(values)))


# -- movement bars (the segment page) ---------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    entries_y: float
    entries_height: float
    exits_height: float
    movement: DayMovement


def movement_chart(days: list[DayMovement]) -> dict:
    """Entries as bars above the middle line, exits below, one slot per day, scaled to the busiest day."""
    middle = (HEIGHT - LABEL_ROOM) / 2
    peak = max([d.entries for d in days] + [d.exits for d in days] + [1])
    slot = WIDTH / max(len(days), 1)
    width = max(slot * 0.7, 1)
    length = Scale(0, peak, 0, middle - 2)        # a bar's length, up for entries and down for exits
    bars = []
    for i, day in enumerate(days):
        up = length(day.entries)
        bars.append(Bar(x=round(i * slot + (slot - width) / 2, 1), width=round(width, 1),
                        entries_y=round(middle - up, 1), entries_height=up,
                        exits_height=length(day.exits), movement=day))
    return {"width": WIDTH, "height": HEIGHT, "middle": middle, "label_y": HEIGHT - 4, "bars": bars, "peak": peak,
            "first": days[0].day if days else None, "last": days[-1].day if days else None,
            "entries": sum(d.entries for d in days), "exits": sum(d.exits for d in days)}


# -- line charts (the measurement pages) ------------------------------------------------------------
# Distinct colours (Okabe-Ito and Tableau hues, told apart with common colour blindness); a chart
# shows at most one line per colour, so no two lines on a page ever share one.
PALETTE = ("#0b61a4", "#e66100", "#1a9850", "#c0182d", "#7b3fb2", "#8c564b", "#d6419c", "#008b8b")
LINE_W, LINE_H = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 62, 18, 26, 42      # room for y tick labels, the axis titles and x dates
Y_TICKS, X_TICKS = 5, 6


@dataclass(frozen=True)
class Tick:
    at: float            # the pixel position along its axis
    label: str


@dataclass(frozen=True)
class Line:
    label: str
    color: str
    points: str          # SVG polyline points; "" when the series has one point (drawn as a dot)
    dots: tuple[tuple[float, float], ...]
    last: str            # the latest value, formatted, for the line's tooltip


@dataclass(frozen=True)
class LineChart:
    title: str
    y_label: str
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: int = LINE_W
    height: int = LINE_H
    left: int = LEFT
    right: int = LINE_W - RIGHT
    top: int = TOP
    bottom: int = LINE_H - BOTTOM

    @property
    def empty(self) -> bool:
        return not any(line.dots for line in self.lines)


def nice_ticks(low: float, high: float, *, count: int = Y_TICKS, integer: bool = False) -> tuple[list[float], float]:
    """Round tick values covering [low, high] (about `count` of them, steps of 1, 2 or 5 x 10^k) and the step."""
    if high <= low:
        high = low + (abs(low) or 1)
    raw = (high - low) / max(count - 1, 1)
    exponent = math.floor(math.log10(raw))
    step = next(m * 10 ** exponent for m in (1, 2, 5, 10) if m * 10 ** exponent >= raw * (1 - 1e-9))
    if integer:
        step = max(step, 1)
    first, last = math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step
    ticks = [round(first + i * step, 12) for i in range(int(round((last - first) / step)) + 1)]
    return ticks, step


def day_ticks(first: dt.date, last: dt.date, *, count: int = X_TICKS) -> list[dt.date]:
    """Dates for the x axis: the first day, then every 1, 2, 7, 14 or 28 x k days, at most `count`."""
    span = (last - first).days
    interval = next((d for d in (1, 2, 7, 14, 28) if span / d < count), 28 * math.ceil(span / 28 / (count - 1)))
    return [first + dt.timedelta(days=i) for i in range(0, span + 1, interval)]


def line_chart(*, title: str, y_label: str, series: list[tuple[str, list[tuple[dt.date, float]]]],
               first: dt.date, last: dt.date, fmt: Callable[[float, float], str]) -> LineChart:
    """Lines for [(label, [(day, value)])] over the days first..last, in PALETTE's colours by position
    (the same series order gives the same colours on every chart); `fmt(value, step)` writes a value
    with the precision the tick step needs (step 0: a value on its own)."""
    if len(series) > len(PALETTE):
        raise ValueError(f"at most {len(PALETTE)} series fit distinct colours")
    values = [v for _, points in series for _, v in points]
    ticks, step = nice_ticks(min([0.0, *values]), max([0.0, *values]), integer=False)
    low, high = ticks[0], ticks[-1]
    days = Scale(0, max((last - first).days, 1), LEFT, LINE_W - RIGHT)
    y = Scale(low, high, LINE_H - BOTTOM, TOP)

    def x(day: dt.date) -> float:
        return days((day - first).days)

    lines = []
    for (label, points), color in zip(series, PALETTE):
        dots = tuple((x(d), y(v)) for d, v in points)
        lines.append(Line(label=label, color=color, points=polyline(dots) if len(dots) > 1 else "", dots=dots,
                          last=fmt(points[-1][1], 0) if points else "no data"))
    return LineChart(title=title, y_label=y_label, lines=tuple(lines),
                     y_ticks=tuple(Tick(y(v), fmt(v, step)) for v in ticks),
                     x_ticks=tuple(Tick(x(d), f"{d:%b} {d.day}") for d in day_ticks(first, last)))
