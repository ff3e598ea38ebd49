"""Segment rule documents: `parse` turns JSON into a typed tree, or raises RuleError naming each bad path.

Parsing is pure (no database, no clock) and strict: unknown keys are errors, so a typo never
silently widens a segment. The document format is described in docs/rules.md.
"""
from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from segments.engine.registry import METRICS, TYPE_BOUNDS, Bounds, Metric, Param
from segments.engine.windows import HOLIDAY_LABELS, HOLIDAYS, Between, Holiday, LastDays, Months, Window

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


def parse(document: object) -> RuleSet:
    """Validate a rule document (decoded JSON) into a RuleSet, or raise RuleError with every problem."""
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
        decoded = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        # Anything json cannot carry (NaN, sets, non-string keys it cannot coerce, cycles, lone
        # surrogates, absurd nesting) could never have arrived over the API either.
        raise RuleError([Problem("", "must be JSON: objects, lists, strings, numbers, true, false and null")]) from None
    if size > MAX_DOCUMENT_BYTES:
        raise RuleError([Problem("", f"is {size} bytes as JSON; at most {MAX_DOCUMENT_BYTES} are allowed")])
    # The JSON round trip means the tree depends only on what JSON can say (tuples are lists, ...).
    reader = _Reader()
    ruleset = reader.document(decoded)
    if reader.problems or ruleset is None:
        raise RuleError(reader.problems)
    return ruleset


def conditions(ruleset: RuleSet) -> Iterator[Condition]:
    """Every condition of the rule set, include before exclude, depth first in document order."""
    yield from _walk(ruleset.include)
    if ruleset.exclude is not None:
        yield from _walk(ruleset.exclude)


def describe(ruleset: RuleSet) -> str:
    """A short sentence saying what the rules select, for version histories and diffs."""
    text = "Customers where " + _describe(ruleset.include)
    if ruleset.exclude is not None:
        text += ", except those where " + _describe(ruleset.exclude)
    return text + "."


def _walk(node: Node) -> Iterator[Condition]:
    match node:
        case Condition():
            yield node
        case All(children=children) | Any_(children=children):
            for child in children:
                yield from _walk(child)
        case Not(child=child):
            yield from _walk(child)


# --- reading documents -------------------------------------------------------------------------


class _Invalid(Exception):
    """A leaf value is not allowed; the message says what is."""


class _Reader:
    """Walks one document, collecting problems rather than stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.failures = 0          # all failures, including those past MAX_PROBLEMS
        self.conditions = 0

    def fail(self, path: str, message: str) -> None:
        self.failures += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(path, message))

    def leaf(self, path: str, read: Callable[..., object], *args: object) -> object | None:
        try:
            return read(*args)
        except _Invalid as exc:
            self.fail(path, str(exc))
            return None

    def unknown_keys(self, raw: dict, path: str, allowed: tuple[str, ...], hint: str) -> int:
        unknown = [key for key in raw if key not in allowed]
        for key in unknown:
            near = difflib.get_close_matches(key, allowed, n=1)
            guess = f"did you mean {_show(near[0])}? " if near else ""
            self.fail(_join(path, key), f"unknown key; {guess}{hint}")
        return len(unknown)

    def document(self, raw: object) -> RuleSet | None:
        if not isinstance(raw, dict):
            self.fail("", "must be an object with version, include and optionally exclude")
            return None
        self.unknown_keys(raw, "", DOCUMENT_KEYS, "a rule document has version, include and exclude")
        version = raw.get("version")
        if "version" not in raw:
            self.fail("version", f"required: {RULES_VERSION}")
        elif type(version) is not int or version != RULES_VERSION:
            self.fail("version", f"must be {RULES_VERSION}, the only version this server reads")
        include = exclude = None
        if "include" not in raw:
            self.fail("include", "required: a condition or a group of conditions")
        else:
            include = self.node(raw["include"], "include", 1)
        if "exclude" in raw:
            exclude = self.node(raw["exclude"], "exclude", 1)
        if self.conditions > MAX_CONDITIONS:
            # First, since it is the one to fix before any other.
            self.problems.insert(0, Problem("", f"has {self.conditions} conditions; at most {MAX_CONDITIONS} "
                                                "are allowed"))
            del self.problems[MAX_PROBLEMS:]
            self.failures += 1
        if self.failures or include is None:
            return None
        return RuleSet(include=include, exclude=exclude)

    def node(self, raw: object, path: str, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            self.fail(path, f"nested too deeply: at most {MAX_DEPTH} levels of groups and conditions")
            return None
        shape = 'must be a condition {"metric": ...} or a group {"all": [...]}, {"any": [...]} or {"not": ...}'
        if not isinstance(raw, dict):
            self.fail(path, shape)
            return None
        groups = [key for key in GROUP_KEYS if key in raw]
        if not groups:
            if any(key in raw for key in CONDITION_KEYS):
                return self.condition(raw, path)
            self.fail(path, shape)
            return None
        if "metric" in raw:
            self.fail(path, "is both a condition and a group; put the condition inside the group")
            return None
        if len(groups) > 1:
            self.fail(path, "a group has exactly one of all, any or not; nest one group inside another")
            return None
        kind = groups[0]
        self.unknown_keys(raw, path, (kind,), "a group has exactly one key: all, any or not")
        inner = _join(path, kind)
        if kind == "not":
            child = self.node(raw[kind], inner, depth + 1)
            return None if child is None else Not(child)
        items = raw[kind]
        if not isinstance(items, list) or not items:
            self.fail(inner, "must be a non-empty list of conditions and groups")
            return None
        children = [self.node(item, f"{inner}[{i}]", depth + 1) for i, item in enumerate(items)]
        if any(child is None for child in children):
            return None
        return All(tuple(children)) if kind == "all" else Any_(tuple(children))

    def condition(self, raw: dict, path: str) -> Condition | None:
        self.conditions += 1
        before = self.failures
        self.unknown_keys(raw, path, CONDITION_KEYS, "a condition has metric, op, value, window and params")
        metric = self.metric(raw, path)
        if metric is None:
            return None
        op = self.op(metric, raw, path)
        value = self.value(metric, op, raw, path) if op is not None else None
        window = self.window(metric, raw, path)
        params = self.params(metric, raw, path)
        if self.failures > before:
            return None
        return Condition(metric=metric, op=op, value=value, window=window, params=MappingProxyType(params))

    def metric(self, raw: dict, path: str) -> Metric | None:
        key = raw.get("metric")
        at = _join(path, "metric")
        if "metric" not in raw:
            self.fail(at, "required: the key of a metric from the catalog")
        elif not isinstance(key, str):
            self.fail(at, "must be a string: the key of a metric from the catalog")
        elif key not in METRICS:
            near = difflib.get_close_matches(key, METRICS, n=1)
            guess = f"; did you mean {_show(near[0])}?" if near else "; see the metric catalog for the keys"
            self.fail(at, f"unknown metric {_show(key)}{guess}")
        else:
            return METRICS[key]
        return None

    def op(self, metric: Metric, raw: dict, path: str) -> str | None:
        op = raw.get("op")
        allowed = f"{', '.join(metric.operators)} for {metric.key}"
        if "op" not in raw:
            self.fail(_join(path, "op"), f"required: one of {allowed}")
        elif not isinstance(op, str) or op not in metric.operators:
            self.fail(_join(path, "op"), f"must be one of {allowed}, not {_show(op)}")
        else:
            return op
        return None

    def value(self, metric: Metric, op: str, raw: dict, path: str) -> Value | None:
        at = _join(path, "value")
        if "value" not in raw:
            self.fail(at, f"required: {_expects(metric, op)}")
            return None
        value = raw["value"]
        if op == "is":
            return self.leaf(at, _read_bool, value)
        if op == "within_last_days":
            return self.leaf(at, _read_whole, value, 1, MAX_WINDOW_DAYS, "a whole number of days")
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(at, f"must be a list of two values [low, high], each {_scalar_expects(metric)}")
                return None
            low, high = (self.leaf(f"{at}[{i}]", _read_scalar, metric, v) for i, v in enumerate(value))
            if low is None or high is None:
                return None
            if low > high:
                self.fail(at, "the low end must not be above the high end")
                return None
            return (low, high)
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST_ITEMS:
                self.fail(at, f"must be a non-empty list of at most {MAX_LIST_ITEMS} values, "
                              f"each {_scalar_expects(metric)}")
                return None
            items = [self.leaf(f"{at}[{i}]", _read_scalar, metric, v) for i, v in enumerate(value)]
            if any(item is None for item in items):
                return None
            if len(set(items)) != len(items):
                self.fail(at, "must not list a value twice")
                return None
            return tuple(items)
        return self.leaf(at, _read_scalar, metric, value)

    def window(self, metric: Metric, raw: dict, path: str) -> Window | None:
        if "window" not in raw:
            return None
        at = _join(path, "window")
        if not metric.windowed:
            self.fail(at, f"{metric.key} takes no window")
            return None
        window = raw["window"]
        kinds_text = "one of last_days, between, months or holiday"
        if not isinstance(window, dict):
            self.fail(at, f"must be an object with {kinds_text}")
            return None
        unknown = self.unknown_keys(window, at, (*WINDOW_KINDS, "years"),
                                    f"a window has {kinds_text}, and years with months or holiday")
        kinds = [key for key in WINDOW_KINDS if key in window]
        if len(kinds) != 1:
            # A misspelt kind ({"last_day": 7}) has been reported as such; saying so twice is noise.
            if kinds or not unknown:
                self.fail(at, f"must have exactly {kinds_text}")
            return None
        kind = kinds[0]
        inner = _join(at, kind)
        years: object = 1
        if "years" in window:
            if kind in ("months", "holiday"):
                years = self.leaf(_join(at, "years"), _read_whole, window["years"], 1, MAX_YEARS,
                                  "a whole number of years")
            else:
                self.fail(_join(at, "years"), "only a months or holiday window takes years")
        if kind == "last_days":
            days = self.leaf(inner, _read_whole, window[kind], 1, MAX_WINDOW_DAYS, "a whole number of days")
            return None if days is None else LastDays(days)
        if kind == "between":
            return self.date_range(window[kind], inner)
        if kind == "months":
            months = self.months(window[kind], inner)
            return None if months is None or years is None else Months(months, years)
        holiday = self.leaf(inner, _read_choice, window[kind], HOLIDAYS)
        return None if holiday is None or years is None else Holiday(holiday, years)

    def date_range(self, raw: object, path: str) -> Between | None:
        if not isinstance(raw, list) or len(raw) != 2:
            self.fail(path, f"must be a list of two dates [first, last], each {_DATE_EXPECTS}")
            return None
        start, end = (self.leaf(f"{path}[{i}]", _read_date, v) for i, v in enumerate(raw))
        if start is None or end is None:
            return None
        if start > end:
            self.fail(path, "the first date must not be after the last")
            return None
        return Between(start, end)

    def months(self, raw: object, path: str) -> tuple[int, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must be a non-empty list of month numbers, 1 (January) to 12 (December)")
            return None
        months = [self.leaf(f"{path}[{i}]", _read_whole, v, 1, 12, "a month number") for i, v in enumerate(raw)]
        if any(month is None for month in months):
            return None
        if len(set(months)) != len(months):
            self.fail(path, "must not list a month twice")
            return None
        return tuple(sorted(months))

    def params(self, metric: Metric, raw: dict, path: str) -> dict[str, ParamValue]:
        at = _join(path, "params")
        takes = (f"{metric.key} takes " + ", ".join(p.name for p in metric.params)) if metric.params \
            else f"{metric.key} takes no parameters"
        given = raw.get("params", {})
        if not isinstance(given, dict):
            self.fail(at, f"must be an object; {takes}")
            return {}
        for name in given:
            if metric.param(name) is None:
                near = difflib.get_close_matches(name, [p.name for p in metric.params], n=1)
                guess = f"did you mean {_show(near[0])}? " if near else ""
                self.fail(_join(at, name), f"unknown parameter; {guess}{takes}")
        params: dict[str, ParamValue] = {}
        for param in metric.params:
            inner = _join(at, param.name)
            if param.name not in given:
                if param.required:
                    self.fail(inner, f"required: {_param_expects(param)}")
                continue
            value = self.param_value(param, given[param.name], inner)
            if value is not None:
                params[param.name] = value
        return params

    def param_value(self, param: Param, raw: object, path: str) -> ParamValue | None:
        if param.type == "months":
            return self.months(raw, path)
        if param.type == "holiday":
            return self.leaf(path, _read_choice, raw, HOLIDAYS)
        if param.type == "id":
            return self.leaf(path, _read_whole, raw, 1, MAX_ID, "a Shopify id")
        return self.leaf(path, _read_text, raw)


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_EXPECTS = f"a date written YYYY-MM-DD, from {EARLIEST_DATE} to {LATEST_DATE}"
_TEXT_EXPECTS = f"a non-blank string of at most {MAX_STRING} characters"


def _read_scalar(metric: Metric, raw: object) -> Scalar:
    match metric.value_type:
        case "count" | "days" | "score":
            bounds = TYPE_BOUNDS[metric.value_type]
            return _read_whole(raw, int(bounds.minimum), int(bounds.maximum), "a whole number")
        case "money" | "ratio" | "number":
            return _read_decimal(raw, TYPE_BOUNDS[metric.value_type])
        case "date":
            return _read_date(raw)
        case "state":
            return _read_choice(raw, metric.choices)
        case "text":
            return _read_text(raw)
        case "bool":
            return _read_bool(raw)
    raise AssertionError(f"registry metric {metric.key} has unknown value type {metric.value_type}")


def _read_whole(raw: object, low: int, high: int, what: str) -> int:
    # bool is an int in Python but never a number in a rule.
    if type(raw) is not int or not low <= raw <= high:
        raise _Invalid(f"must be {what} from {low} to {high}")
    return raw


def _read_decimal(raw: object, bounds: Bounds) -> Decimal:
    expects = _decimal_expects(bounds)
    if type(raw) is int:
        value = Decimal(raw)
    elif type(raw) is float:
        # Finite: NaN and infinities were refused as not JSON. repr gives the shortest decimal
        # that reads back as this float: 19.99, not 19.989999...
        value = Decimal(repr(raw))
    elif isinstance(raw, str) and len(raw) <= MAX_STRING and _DECIMAL_TEXT.fullmatch(raw):
        value = Decimal(raw)
    else:
        raise _Invalid(f"must be {expects}")
    step = Decimal(1).scaleb(-bounds.places)
    if not bounds.minimum <= value <= bounds.maximum or value.quantize(step) != value:
        raise _Invalid(f"must be {expects}")
    # Adding zero turns -0.00 into 0.00.
    return value.quantize(step) + 0


def _read_date(raw: object) -> dt.date:
    if isinstance(raw, str) and _DATE_TEXT.fullmatch(raw):
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if EARLIEST_DATE <= day <= LATEST_DATE:
                return day
    raise _Invalid(f"must be {_DATE_EXPECTS}")


def _read_choice(raw: object, choices: tuple[str, ...]) -> str:
    if not isinstance(raw, str) or raw not in choices:
        raise _Invalid(f"must be one of {', '.join(choices)}")
    return raw


def _read_text(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_STRING:
        raise _Invalid(f"must be {_TEXT_EXPECTS}")
    return raw


def _read_bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise _Invalid("must be true or false")
    return raw


def _decimal_expects(bounds: Bounds) -> str:
    return (f"a number from {bounds.minimum} to {bounds.maximum} with at most {bounds.places} decimal places, "
            f'written as a JSON number or a string such as "{bounds.example}"')


def _scalar_expects(metric: Metric) -> str:
    match metric.value_type:
        case "count" | "days" | "score":
            bounds = TYPE_BOUNDS[metric.value_type]
            return f"a whole number from {bounds.minimum} to {bounds.maximum}"
        case "money" | "ratio" | "number":
            return _decimal_expects(TYPE_BOUNDS[metric.value_type])
        case "date":
            return _DATE_EXPECTS
        case "state":
            return f"one of {', '.join(metric.choices)}"
        case "bool":
            return "true or false"
    return _TEXT_EXPECTS


def _expects(metric: Metric, op: str) -> str:
    if op == "between":
        return f"a list of two values [low, high], each {_scalar_expects(metric)}"
    if op in ("in", "not_in"):
        return f"a non-empty list of values, each {_scalar_expects(metric)}"
    if op == "within_last_days":
        return f"a whole number of days from 1 to {MAX_WINDOW_DAYS}"
    return _scalar_expects(metric)


def _param_expects(param: Param) -> str:
    match param.type:
        case "months":
            return "a non-empty list of month numbers, 1 (January) to 12 (December)"
        case "holiday":
            return f"one of {', '.join(HOLIDAYS)}"
        case "id":
            return "a Shopify id (a whole number)"
    return _TEXT_EXPECTS


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _join(path: str, key: str) -> str:
    # Keys that are not plain names are written the way JSON would quote them: include["a.b"].
    step = f".{key}" if _NAME.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"
    return step.lstrip(".") if not path else path + step


def _show(raw: object) -> str:
    text = json.dumps(raw, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


# --- writing documents -------------------------------------------------------------------------


def _node_document(node: Node) -> dict:
    match node:
        case All(children=children):
            return {"all": [_node_document(child) for child in children]}
        case Any_(children=children):
            return {"any": [_node_document(child) for child in children]}
        case Not(child=child):
            return {"not": _node_document(child)}
    document: dict = {"metric": node.metric.key, "op": node.op,
                      "value": _json_value(node.value, node.metric.value_type)}
    if node.window is not None:
        document["window"] = _window_document(node.window)
    if node.params:
        document["params"] = {name: _json_value(value) for name, value in node.params.items()}
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


def _json_value(value: object, value_type: str | None = None) -> object:
    if isinstance(value, tuple):
        return [_json_value(item, value_type) for item in value]
    if isinstance(value, Decimal):
        # Strings keep decimals exact. Money keeps its cents; other decimals drop trailing zeros,
        # and "f" never writes an exponent (1E+2), which parse would refuse.
        return f"{value:.2f}" if value_type == "money" else format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --- describing documents ----------------------------------------------------------------------

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
    return str(_json_value(value, value_type))


def describe_node(node: Node) -> str:
    """One node (a condition or a group) in the words describe() uses, e.g. for diffs between versions."""
    return _describe(node)
