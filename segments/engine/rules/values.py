"""Reading a condition's leaf values (numbers, money, dates, choices, text, ids) against what its
metric allows, and the words that say what was expected."""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from segments.engine.registry import TYPE_BOUNDS, Bounds, Metric, Param
from segments.engine.rules.tree import EARLIEST_DATE, LATEST_DATE, MAX_STRING, MAX_WINDOW_DAYS, Scalar
from segments.engine.windows import HOLIDAYS


class Invalid(Exception):
    """A leaf value is not allowed; the message says what is."""


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_EXPECTS = f"a date written YYYY-MM-DD, from {EARLIEST_DATE} to {LATEST_DATE}"
_TEXT_EXPECTS = f"a non-blank string of at most {MAX_STRING} characters"


def read_scalar(metric: Metric, raw: object) -> Scalar:
    match metric.value_type:
        case "count" | "days" | "score":
            bounds = TYPE_BOUNDS[metric.value_type]
            return read_whole(raw, int(bounds.minimum), int(bounds.maximum), "a whole number")
        case "money" | "ratio" | "number":
            return _read_decimal(raw, TYPE_BOUNDS[metric.value_type])
        case "date":
            return read_date(raw)
        case "state":
            return read_choice(raw, metric.choices)
        case "text":
            return read_text(raw)
        case "bool":
            return read_bool(raw)
    raise AssertionError(f"registry metric {metric.key} has unknown value type {metric.value_type}")


def read_whole(raw: object, low: int, high: int, what: str) -> int:
    # bool is an int in Python but never a number in a rule.
    if type(raw) is not int or not low <= raw <= high:
        raise Invalid(f"must be {what} from {low} to {high}")
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
        raise Invalid(f"must be {expects}")
    step = Decimal(1).scaleb(-bounds.places)
    if not bounds.minimum <= value <= bounds.maximum or value.quantize(step) != value:
        raise Invalid(f"must be {expects}")
    # Adding zero turns -0.00 into 0.00.
    return value.quantize(step) + 0


def read_date(raw: object) -> dt.date:
    if isinstance(raw, str) and _DATE_TEXT.fullmatch(raw):
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if EARLIEST_DATE <= day <= LATEST_DATE:
                return day
    raise Invalid(f"must be {DATE_EXPECTS}")


def read_choice(raw: object, choices: tuple[str, ...]) -> str:
    if not isinstance(raw, str) or raw not in choices:
        raise Invalid(f"must be one of {', '.join(choices)}")
    return raw


def read_text(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_STRING:
        raise Invalid(f"must be {_TEXT_EXPECTS}")
    return raw


def read_bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise Invalid("must be true or false")
    return raw


def _decimal_expects(bounds: Bounds) -> str:
    return (f"a number from {bounds.minimum} to {bounds.maximum} with at most {bounds.places} decimal places, "
            f'written as a JSON number or a string such as "{bounds.example}"')


def scalar_expects(metric: Metric) -> str:
    match metric.value_type:
        case "count" | "days" | "score":
            bounds = TYPE_BOUNDS[metric.value_type]
            return f"a whole number from {bounds.minimum} to {bounds.maximum}"
        case "money" | "ratio" | "number":
            return _decimal_expects(TYPE_BOUNDS[metric.value_type])
        case "date":
            return DATE_EXPECTS
        case "state":
            return f"one of {', '.join(metric.choices)}"
        case "bool":
            return "true or false"
    return _TEXT_EXPECTS


def expects(metric: Metric, op: str) -> str:
    if op == "between":
        return f"a list of two values [low, high], each {scalar_expects(metric)}"
    if op in ("in", "not_in"):
        return f"a non-empty list of values, each {scalar_expects(metric)}"
    if op == "within_last_days":
        return f"a whole number of days from 1 to {MAX_WINDOW_DAYS}"
    return scalar_expects(metric)


def param_expects(param: Param) -> str:
    match param.type:
        case "months":
            return "a non-empty list of month numbers, 1 (January) to 12 (December)"
        case "holiday":
            return f"one of {', '.join(HOLIDAYS)}"
        case "id":
            return "a Shopify id (a whole number)"
    return _TEXT_EXPECTS


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def join(path: str, key: str) -> str:
    # Keys that are not plain names are written the way JSON would quote them: include["a.b"].
    step = f".{key}" if _NAME.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"
    return step.lstrip(".") if not path else path + step


def show(raw: object) -> str:
    text = json.dumps(raw, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
