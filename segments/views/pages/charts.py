"""Server-drawn SVG geometry for the pages' charts (no chart library, nothing to load)."""
from __future__ import annotations

from dataclasses import dataclass

from segments.selectors.overview import DayMovement

WIDTH, HEIGHT, LABEL_ROOM = 720, 180, 18


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
    bars = []
    for i, day in enumerate(days):
        up = day.entries / peak * (middle - 2)
        down = day.exits / peak * (middle - 2)
        bars.append(Bar(x=round(i * slot + (slot - width) / 2, 1), width=round(width, 1),
                        entries_y=round(middle - up, 1), entries_height=round(up, 1),
                        exits_height=round(down, 1), movement=day))
    return {"width": WIDTH, "height": HEIGHT, "middle": middle, "label_y": HEIGHT - 4, "bars": bars, "peak": peak,
            "first": days[0].day if days else None, "last": days[-1].day if days else None,
            "entries": sum(d.entries for d in days), "exits": sum(d.exits for d in days)}
