"""The typed tree a rule document becomes, its limits, and its canonical JSON document."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from segments.engine.registry import Metric
from segments.engine.windows import Between, Holiday, LastDays, Months, Window

RULES_VERSION = 1

MAX_DEPTH = 8                  # levels of groups and conditions; the top node is level 1
MAX_CONDITIONS = 100
MAX_DOCUMENT_BYTES = 64 * 1024  # of the document encoded as compact UTF-8 JSON
MAX_LIST_ITEMS = 500
MAX_STRING = 255
MAX_PROBLEMS = 50              # reported per document; enough to fix a form, small enough for a 400
MAX_WINDOW_DAYS = 3650
MAX_YEARS = 10
EARLIEST_DATE = dt.date(1990, 1, 1)
LATEST_DATE = dt.date(2099, 12, 31)
MAX_ID = 2**63 - 1             # Shopify ids are 64-bit

DOCUMENT_KEYS = ("version", "include", "exclude")
GROUP_KEYS = ("all", "any", "not")
CONDITION_KEYS = ("metric", "op", "value", "window", "params")
WINDOW_KINDS = ("last_days", "between", "months", "holiday")

Scalar = int | Decimal | str | bool | dt.date
Value = Scalar | tuple[Scalar, ...]
ParamValue = str | int | tuple[int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (a JSON path; empty for the document itself) and what."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.message}"


class RuleError(ValueError):
    """A rule document that cannot be used, with every problem found (up to MAX_PROBLEMS)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class SettingsError(ValueError):
    """Settings (of a segment or a shop) that cannot be used, with their problems (path, message)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Condition:
    """A metric compared with a value, over an optional window, with the metric's parameters."""

    metric: Metric
    op: str
    value: Value
    window: Window | None = None
    # Read-only; left out of the hash (a mapping has none) but compared for equality.
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class All:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Condition | All | Any_ | Not


@dataclass(frozen=True)
class RuleSet:
    """A parsed rule document: customers matching `include` and not matching `exclude`."""

    include: Node
    exclude: Node | None = None
    version: int = RULES_VERSION

    def to_document(self) -> dict:
        """The canonical JSON document; parse(ruleset.to_document()) == ruleset."""
        document: dict = {"version": self.version, "include": _node_document(self.include)}
        if self.exclude is not None:
            document["exclude"] = _node_document(self.exclude)
        return document


def conditions(ruleset: RuleSet) -> Iterator[Condition]:
    """Every condition of the rule set, include before exclude, depth first in document order."""
    yield from _walk(ruleset.include)
    if ruleset.exclude is not None:
        yield from _walk(ruleset.exclude)


def _walk(node: Node) -> Iterator[Condition]:
    match node:
        case Condition():
            yield node
        case All(children=children) | Any_(children=children):
            for child in children:
                yield from _walk(child)
        case Not(child=child):
            yield from _walk(child)




def _node_document(node: Node) -> dict:
    match node:
        case All(children=children):
            return {"all": [_node_document(child) for child in children]}
        case Any_(children=children):
            return {"any": [_node_document(child) for child in children]}
        case Not(child=child):
            return {"not": _node_document(child)}
    document: dict = {"metric": node.metric.key, "op": node.op,
                      "value": json_value(node.value, node.metric.value_type)}
    if node.window is not None:
        document["window"] = _window_document(node.window)
    if node.params:
        document["params"] = {name: json_value(value) for name, value in node.params.items()}
    return document


def _window_document(window: Window) -> dict:
    match window:
        case LastDays(days=days):
            return {"last_days": days}
        case Between(start=start, end=end):
            return {"between": [start.isoformat(), end.isoformat()]}
        case Months(months=months, years=years):
            return {"months": list(months), "years": years}
        case Holiday(holiday=holiday, years=years):
            return {"holiday": holiday, "years": years}
    raise TypeError(f"not a window: {window!r}")


def json_value(value: object, value_type: str | None = None) -> object:
    if isinstance(value, tuple):
        return [json_value(item, value_type) for item in value]
    if isinstance(value, Decimal):
        # Strings keep decimals exact. Money keeps its cents; other decimals drop trailing zeros,
        # and "f" never writes an exponent (1E+2), which parse would refuse.
        return f"{value:.2f}" if value_type == "money" else format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
