"""How the measurement pages write numbers: money in the shop's currency, rates as percentages and
differences of rates in percentage points, counts with thousands separators. One function per kind,
used by every measurement page and by the charts' axis ticks, so a figure reads the same everywhere.
"""
from __future__ import annotations

import math
from decimal import Decimal

DASH = "—"
# Symbols a merchant reads without ambiguity; other currencies are written with their ISO code.
SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$", "MXN": "MX$",
           "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "BRL": "R$"}
NO_DECIMALS = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD"}
MINUS = "−"   # a real minus sign: a hyphen reads as a dash in a column of figures

Number = int | float | Decimal | None


def money(value: Number, currency: str, *, signed: bool = False, decimals: int | None = None) -> str:
    """`1234.5, "USD"` -> "$1,234.50"; "CHF" -> "1,234.50 CHF"; JPY without decimals; None -> "—"."""
    if value is None:
        return DASH
    code = (currency or "").upper()
    places = decimals if decimals is not None else (0 if code in NO_DECIMALS else 2)
    amount = f"{abs(float(value)):,.{places}f}"
    body = f"{SYMBOLS[code]}{amount}" if code in SYMBOLS else f"{amount} {code}".rstrip()
    return _sign(value, amount, signed) + body


def rate(value: Number, *, decimals: int = 1) -> str:
    """A share or rate as a percentage: 0.0363 -> "3.6%"."""
    if value is None:
        return DASH
    shown = f"{abs(float(value)) * 100:,.{decimals}f}"
    return _sign(value, shown, False) + f"{shown}%"


def points(value: Number, *, decimals: int = 1) -> str:
    """A difference between two rates, in percentage points: 0.012 -> "+1.2 pts"."""
    if value is None:
        return DASH
    shown = f"{abs(float(value)) * 100:,.{decimals}f}"
    return _sign(value, shown, True) + f"{shown} pts"


def change(value: Number) -> str:
    """A relative change: 0.25 -> "+25%" (against the period before)."""
    if value is None:
        return DASH
    shown = f"{abs(float(value)) * 100:,.0f}"
    return _sign(value, shown, True) + f"{shown}%"


def count(value: Number) -> str:
    return DASH if value is None else f"{round(float(value)):,}"


def _sign(value: Number, shown: str, signed: bool) -> str:
    """The sign of what is shown: a change that rounds to zero reads "0%", never "−0%"."""
    if not shown.strip("0.,"):
        return ""
    if float(value) < 0:
        return MINUS
    return "+" if signed else ""


def tick(value: float, *, kind: str, currency: str, step: float) -> str:
    """An axis tick, with as many decimals as the tick spacing needs (no more)."""
    if kind == "money":    # whole amounts, or cents when the ticks are closer than one unit apart
        whole = _places(step) == 0 or currency.upper() in NO_DECIMALS
        return money(value, currency, decimals=0 if whole else 2)
    if kind == "rate":
        return rate(value, decimals=_places(step * 100))
    return f"{value:,.{_places(step)}f}"


def _places(step: float) -> int:
    """Decimals needed to tell ticks `step` apart: 50 -> 0, 0.5 -> 1, 0.25 -> 2."""
    if step <= 0:
        return 0
    exponent = math.floor(math.log10(step) + 1e-9)
    mantissa = step / 10 ** exponent
    return max(0, -exponent + (0 if abs(mantissa - round(mantissa)) < 1e-9 else 1))
