"""Rule sets in words, for version histories and diffs: "Customers where orders count is at least 2"."""
from __future__ import annotations

import json

from segments.engine.rules.tree import All, Any_, Condition, Node, Not, RuleSet, json_value
from segments.engine.windows import HOLIDAY_LABELS, Between, Holiday, LastDays, Months, Window


def describe(ruleset: RuleSet) -> str:
    """A short sentence saying what the rules select, for version histories and diffs."""
    text = "Customers where " + _describe(ruleset.include)
    if ruleset.exclude is not None:
        text += ", except those where " + _describe(ruleset.exclude)
    return text + "."



_OP_WORDS = {"gt": "is above", "gte": "is at least", "lt": "is below", "lte": "is at most", "eq": "is",
             "neq": "is not", "in": "is one of", "not_in": "is none of", "before": "is before", "after": "is after"}
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _describe(node: Node, nested: bool = False) -> str:
    match node:
        case All(children=children) | Any_(children=children):
            joiner = " and " if isinstance(node, All) else " or "
            text = joiner.join(_describe(child, nested=True) for child in children)
            return f"({text})" if nested and len(children) > 1 else text
        case Not(child=child):
            return f"not ({_describe(child)})"
    return _describe_condition(node)


def _describe_condition(condition: Condition) -> str:
    subject = condition.metric.label
    details = [f"{name.replace('_', ' ')} {_describe_value(value)}" for name, value in condition.params.items()]
    if condition.window is not None:
        details.append(_describe_window(condition.window))
    if details:
        subject += f" ({'; '.join(details)})"
    value, value_type = condition.value, condition.metric.value_type
    match condition.op:
        case "between":
            low, high = value
            return f"{subject} is between {_describe_value(low, value_type)} and {_describe_value(high, value_type)}"
        case "within_last_days":
            return f"{subject} is within the last {value} days"
        case "is":
            return f"{subject}: {'yes' if value else 'no'}"
    return f"{subject} {_OP_WORDS[condition.op]} {_describe_value(value, value_type)}"


def _describe_window(window: Window) -> str:
    match window:
        case LastDays(days=days):
            return f"last {days} days"
        case Between(start=start, end=end):
            return f"{start.isoformat()} to {end.isoformat()}"
        case Months(months=months, years=years):
            return f"{', '.join(_MONTH_NAMES[m - 1] for m in months)}, {_years(years)}"
        case Holiday(holiday=holiday, years=years):
            return f"{HOLIDAY_LABELS[holiday]}, {_years(years)}"
    raise TypeError(f"not a window: {window!r}")


def _years(years: int) -> str:
    return "last year" if years == 1 else f"last {years} years"


def _describe_value(value: object, value_type: str | None = None) -> str:
    if isinstance(value, tuple):
        return ", ".join(_describe_value(item, value_type) for item in value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(json_value(value, value_type))


def describe_node(node: Node) -> str:
    """One node (a condition or a group) in the words describe() uses, e.g. for diffs between versions."""
    return _describe(node)
