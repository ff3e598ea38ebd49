"""Reading a rule document: a walk that collects every problem with its path rather than stopping
at the first, within the document's limits."""
from __future__ import annotations

import difflib
from collections.abc import Callable
from types import MappingProxyType

from segments.engine.registry import METRICS, Metric, Param
from segments.engine.rules.tree import (
    CONDITION_KEYS, DOCUMENT_KEYS, GROUP_KEYS, MAX_CONDITIONS, MAX_DEPTH, MAX_ID, MAX_LIST_ITEMS, MAX_PROBLEMS,
    MAX_WINDOW_DAYS, MAX_YEARS, RULES_VERSION, WINDOW_KINDS, All, Any_, Condition, Node, Not, ParamValue, Problem,
    RuleSet, Value,
)
from segments.engine.rules.values import (
    DATE_EXPECTS, Invalid, expects, join, param_expects, read_bool, read_choice, read_date, read_scalar, read_text,
    read_whole, scalar_expects, show,
)
from segments.engine.windows import HOLIDAYS, Between, Holiday, LastDays, Months, Window


class Reader:
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
        except Invalid as exc:
            self.fail(path, str(exc))
            return None

    def unknown_keys(self, raw: dict, path: str, allowed: tuple[str, ...], hint: str) -> int:
        unknown = [key for key in raw if key not in allowed]
        for key in unknown:
            near = difflib.get_close_matches(key, allowed, n=1)
            guess = f"did you mean {show(near[0])}? " if near else ""
            self.fail(join(path, key), f"unknown key; {guess}{hint}")
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
        inner = join(path, kind)
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
        at = join(path, "metric")
        if "metric" not in raw:
            self.fail(at, "required: the key of a metric from the catalog")
        elif not isinstance(key, str):
            self.fail(at, "must be a string: the key of a metric from the catalog")
        elif key not in METRICS:
            near = difflib.get_close_matches(key, METRICS, n=1)
            guess = f"; did you mean {show(near[0])}?" if near else "; see the metric catalog for the keys"
            self.fail(at, f"unknown metric {show(key)}{guess}")
        else:
            return METRICS[key]
        return None

    def op(self, metric: Metric, raw: dict, path: str) -> str | None:
        op = raw.get("op")
        allowed = f"{', '.join(metric.operators)} for {metric.key}"
        if "op" not in raw:
            self.fail(join(path, "op"), f"required: one of {allowed}")
        elif not isinstance(op, str) or op not in metric.operators:
            self.fail(join(path, "op"), f"must be one of {allowed}, not {show(op)}")
        else:
            return op
        return None

    def value(self, metric: Metric, op: str, raw: dict, path: str) -> Value | None:
        at = join(path, "value")
        if "value" not in raw:
            self.fail(at, f"required: {expects(metric, op)}")
            return None
        value = raw["value"]
        if op == "is":
            return self.leaf(at, read_bool, value)
        if op == "within_last_days":
            return self.leaf(at, read_whole, value, 1, MAX_WINDOW_DAYS, "a whole number of days")
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(at, f"must be a list of two values [low, high], each {scalar_expects(metric)}")
                return None
            low, high = (self.leaf(f"{at}[{i}]", read_scalar, metric, v) for i, v in enumerate(value))
            if low is None or high is None:
                return None
            if low > high:
                self.fail(at, "the low end must not be above the high end")
                return None
            return (low, high)
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST_ITEMS:
                self.fail(at, f"must be a non-empty list of at most {MAX_LIST_ITEMS} values, "
                              f"each {scalar_expects(metric)}")
                return None
            items = [self.leaf(f"{at}[{i}]", read_scalar, metric, v) for i, v in enumerate(value)]
            if any(item is None for item in items):
                return None
            if len(set(items)) != len(items):
                self.fail(at, "must not list a value twice")
                return None
            return tuple(items)
        return self.leaf(at, read_scalar, metric, value)

    def window(self, metric: Metric, raw: dict, path: str) -> Window | None:
        if "window" not in raw:
            return None
        at = join(path, "window")
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
        inner = join(at, kind)
        years: object = 1
        if "years" in window:
            if kind in ("months", "holiday"):
                years = self.leaf(join(at, "years"), read_whole, window["years"], 1, MAX_YEARS,
                                  "a whole number of years")
            else:
                self.fail(join(at, "years"), "only a months or holiday window takes years")
        if kind == "last_days":
            days = self.leaf(inner, read_whole, window[kind], 1, MAX_WINDOW_DAYS, "a whole number of days")
            return None if days is None else LastDays(days)
        if kind == "between":
            return self.date_range(window[kind], inner)
        if kind == "months":
            months = self.months(window[kind], inner)
            return None if months is None or years is None else Months(months, years)
        holiday = self.leaf(inner, read_choice, window[kind], HOLIDAYS)
        return None if holiday is None or years is None else Holiday(holiday, years)

    def date_range(self, raw: object, path: str) -> Between | None:
        if not isinstance(raw, list) or len(raw) != 2:
            self.fail(path, f"must be a list of two dates [first, last], each {DATE_EXPECTS}")
            return None
        start, end = (self.leaf(f"{path}[{i}]", read_date, v) for i, v in enumerate(raw))
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
        months = [self.leaf(f"{path}[{i}]", read_whole, v, 1, 12, "a month number") for i, v in enumerate(raw)]
        if any(month is None for month in months):
            return None
        if len(set(months)) != len(months):
            self.fail(path, "must not list a month twice")
            return None
        return tuple(sorted(months))

    def params(self, metric: Metric, raw: dict, path: str) -> dict[str, ParamValue]:
        at = join(path, "params")
        takes = (f"{metric.key} takes " + ", ".join(p.name for p in metric.params)) if metric.params \
            else f"{metric.key} takes no parameters"
        given = raw.get("params", {})
        if not isinstance(given, dict):
            self.fail(at, f"must be an object; {takes}")
            return {}
        for name in given:
            if metric.param(name) is None:
                near = difflib.get_close_matches(name, [p.name for p in metric.params], n=1)
                guess = f"did you mean {show(near[0])}? " if near else ""
                self.fail(join(at, name), f"unknown parameter; {guess}{takes}")
        params: dict[str, ParamValue] = {}
        for param in metric.params:
            inner = join(at, param.name)
            if param.name not in given:
                if param.required:
                    self.fail(inner, f"required: {param_expects(param)}")
                continue
            value = self.param_value(param, given[param.name], inner)
            if value is not None:
                params[param.name] = value
        return params

    def param_value(self, param: Param, raw: object, path: str) -> ParamValue | None:
        if param.type == "months":
            return self.months(raw, path)
        if param.type == "holiday":
            return self.leaf(path, read_choice, raw, HOLIDAYS)
        if param.type == "id":
            return self.leaf(path, read_whole, raw, 1, MAX_ID, "a Shopify id")
        return self.leaf(path, read_text, raw)
