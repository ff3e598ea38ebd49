"""A grouped bar chart drawn on the server as SVG geometry: for each category, one bar per series
side by side (the predictions page's predicted against actual), on round ticks from zero."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from segments.web.pages.charts import BOTTOM, LEFT, LINE_H, LINE_W, PALETTE, RIGHT, TOP, Scale, Tick, nice_ticks


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class BarChart:
    title: str
    y_label: str
    x_label: str
    series: tuple[tuple[str, str], ...]      # (label, colour)
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: int = LINE_W
    height: int = LINE_H
    left: int = LEFT
    right: int = LINE_W - RIGHT
    bottom: int = LINE_H - BOTTOM


def bar_chart(*, title: str, y_label: str, x_label: str, categories: list[str],
              series: list[tuple[str, list[float | None]]], fmt: Callable[[float, float], str]) -> BarChart:
    values = [v for _, vs in series for v in vs if v is not None]
    ticks, step = nice_ticks(0.0, max([0.0, *values]))
    y = Scale(ticks[0], ticks[-1], LINE_H - BOTTOM, TOP)
    slot = (LINE_W - RIGHT - LEFT) / max(len(categories), 1)
    width = slot * 0.8 / max(len(series), 1)
    bars = []
    for i, category in enumerate(categories):
        for j, ((label, vs), color) in enumerate(zip(series, PALETTE)):
            value = vs[i]
            if value is None:
                continue
            top = y(value)
            bars.append(Bar(x=round(LEFT + i * slot + slot * 0.1 + j * width, 1), y=top, width=round(width, 1),
                            height=round(y(0) - top, 1), color=color, title=f"{label}, {category}: {fmt(value, 0)}"))
    return BarChart(title=title, y_label=y_label, x_label=x_label,
                    series=tuple((label, color) for (label, _), color in zip(series, PALETTE)), bars=tuple(bars),
                    y_ticks=tuple(Tick(y(v), fmt(v, step)) for v in ticks),
                    x_ticks=tuple(Tick(round(LEFT + (i + 0.5) * slot, 1), c) for i, c in enumerate(categories)))
