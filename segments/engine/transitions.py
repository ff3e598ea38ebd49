"""When can the passing of time alone change a rule's answer? The instants the time sweep watches.

A condition on days since a timestamp, a date within the last N days, or a "last N days" window
compares stored times with a local midnight N days back (see compiler); that boundary moves once a
day, so between two sweeps the answer can change only for customers with a time between the
boundary's two positions: an index range, not a scan of every rule. Replenishment ratios cross
their threshold at last order + threshold x median gap; month and holiday windows change for the
whole shop at once; a checkout turns abandoned its delay after it was created.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from segments.engine.registry import VISIT_TIMES
from segments.engine.rules import Condition, RuleSet, conditions
from segments.engine.windows import Holiday, LastDays, Months, Window

# Where a watched time lives: a metrics-table column, or the windowed rows themselves (VISITS: the
# visitor-days' first events, VISIT_ENDS: their last).
ORDERS, CHECKOUTS, CARTS, VISITS, VISIT_ENDS = "orders", "checkouts", "carts", "visits", "visit_ends"


@dataclass
class Watch:
    """What the sweep looks at for a set of rules."""

    # (source, days back): a metrics column ("m.last_order_at", ...) or one of the sources above.
    day_boundaries: set[tuple[str, int]] = field(default_factory=set)
    replenishment: set[Decimal] = field(default_factory=set)      # ratio thresholds
    calendar_windows: set[Window] = field(default_factory=set)     # months and holidays: shop-wide


def _day_offsets(condition: Condition) -> set[int]:
    """The N of each `midnight(today - N)` the compiled condition compares with."""
    op, value = condition.op, condition.value
    if condition.metric.value_type == "date":
        return {value} if op == "within_last_days" else set()
    values = value if op == "between" else (value,)
    return {n for v in values for n in (v - 1, v)}


def watch(rulesets: Iterable[RuleSet]) -> Watch:
    found = Watch()
    for ruleset in rulesets:
        for condition in conditions(ruleset):
            metric = condition.metric
            if metric.key in VISIT_TIMES:
                source = VISITS if VISIT_TIMES[metric.key] == "first" else VISIT_ENDS
                found.day_boundaries |= {(source, n) for n in _day_offsets(condition)}
            elif metric.derive == "days_since" or metric.value_type == "date":
                found.day_boundaries |= {(f"m.{metric.column}", n) for n in _day_offsets(condition)}
            elif metric.derive == "replenishment":
                values = condition.value if condition.op == "between" else (condition.value,)
                found.replenishment |= set(values)
            window = condition.window
            if isinstance(window, LastDays):
                source = VISITS if metric.family == "browsing" else {
                    "abandoned_checkouts": CHECKOUTS, "abandoned_not_purchased_since": CHECKOUTS,
                    "cart_activity": CARTS}.get(metric.key, ORDERS)
                found.day_boundaries.add((source, window.days))
            elif isinstance(window, (Months, Holiday)):
                found.calendar_windows.add(window)
    return found
