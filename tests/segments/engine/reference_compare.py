"""The reference evaluator's comparisons and arithmetic: how a condition compares a value, and the
sums, medians and ranks it reads orders with (tests/segments/engine/reference.py)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from segments.engine.rules import Condition
from segments.mirror.models import Order
from segments.storefront.models import VisitorDay


def compare(condition: Condition, value: object, *, today: dt.date) -> bool:
    """Whether a metric value satisfies the condition's operator and value; None never does."""
    if value is None:
        return False
    op, wanted, kind = condition.op, condition.value, condition.metric.value_type
    if kind in ("ratio", "number"):
        value = float(value)
        wanted = tuple(float(w) for w in wanted) if isinstance(wanted, tuple) else float(wanted)
    match op:
        case "gt":
            return value > wanted
        case "gte":
            return value >= wanted
        case "lt":
            return value < wanted
        case "lte":
            return value <= wanted
        case "eq":
            return value == wanted
        case "neq":
            return value != wanted
        case "between":
            low, high = wanted
            return low <= value <= high
        case "in":
            return value in wanted
        case "not_in":
            return value not in wanted
        case "before":
            return value < wanted
        case "after":
            return value > wanted
        case "within_last_days":
            # No upper end: a date after today is on or after today - N days too.
            return value >= today - dt.timedelta(days=wanted)
        case "is":
            return value == wanted
    raise ValueError(f"unknown operator {op!r}")


def inside_intervals(moment: dt.datetime, intervals: list[tuple[dt.datetime, dt.datetime]] | None) -> bool:
    if intervals is None:
        return True
    return any(start <= moment < end for start, end in intervals)


def net_of(orders: Iterable[Order]) -> Decimal:
    return sum((o.total - o.total_refunded for o in orders), Decimal(0))


def is_discounted(order: Order) -> bool:
    # The table's SQL: total_discounts > 0 OR discount_codes <> '[]'.
    return order.total_discounts > 0 or order.discount_codes != []


def median_gap_days(orders: list[Order]) -> float | None:
    """Median of the days (of 24 hours) between consecutive orders; None with fewer than two.

    With an even number of gaps, the two middle ones are interpolated as PostgreSQL's
    percentile_cont(0.5) does, low + 0.5 * (high - low), which the metrics table stores: in binary
    floating point it can be one unit in the last place away from (low + high) / 2.
    """
    gaps = sorted((b.created_at - a.created_at).total_seconds() / 86400 for a, b in zip(orders, orders[1:]))
    if not gaps:
        return None
    middle = len(gaps) // 2
    if len(gaps) % 2:
        return gaps[middle]
    low, high = gaps[middle - 1], gaps[middle]
    return low + 0.5 * (high - low)


def nearest_rank(sorted_values: list, position: int):
    """The value at rank ceil(position * n / 100) of the ascending values; None when empty."""
    if not sorted_values:
        return None
    return sorted_values[-(-position * len(sorted_values) // 100) - 1]


def _day_value(days: list[VisitorDay], column: str, *, last: bool) -> str | None:
    """The non-blank value of `column` on the first (or last) of the days by first event, ties to the
    lowest (or highest) value by code point."""
    valued = [(day.first_at, getattr(day, column)) for day in days if getattr(day, column) != ""]
    if not valued:
        return None
    return (max(valued) if last else min(valued))[1]
