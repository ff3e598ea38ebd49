"""A code discount's create or update input, read into its `code_discounts` columns with Shopify's
DiscountUserErrors (devstore.discounts runs it inside the write's transaction).

Each key present in the input is read; on create a missing key takes its default (all customers,
starting now, combining with nothing). On update, `context.customerSegments` adds to and removes from
the segments the discount already has, as Shopify's `add` / `remove` say.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .customer_segments import segment_row
from .graphql_context import RequestContext
from .state import iso, parse_gid, parse_iso

BASIC, FREE_SHIPPING = "BASIC", "FREE_SHIPPING"
COMBINES = ("orderDiscounts", "productDiscounts", "shippingDiscounts")
MAX_TEXT = 255

Obj = dict[str, Any]


class DiscountInput:
    """One create or update input read into a row's columns, collecting DiscountUserErrors as it goes."""

    def __init__(self, ctx: RequestContext, conn: sqlite3.Connection, arg: str, kind: str, data: Obj,
                 existing: sqlite3.Row | None):
        self.ctx, self.conn, self.arg, self.kind, self.data, self.existing = ctx, conn, arg, kind, data, existing
        self.errors: list[Obj] = []
        self.columns: Obj = {}

    def error(self, path: list[str], code: str, message: str) -> None:
        self.errors.append({"field": [self.arg, *path], "code": code, "message": message, "extraInfo": None})

    def given(self, key: str) -> bool:
        """A key to read: present in the input, or missing on create (so its default applies)."""
        return key in self.data or self.existing is None

    def read(self) -> Obj:
        self._text("title", "Title")
        self._text("code", "Code")
        self._dates()
        self._eligibility()
        if self.kind == BASIC and self.given("customerGets"):
            self._customer_gets()
        if "minimumRequirement" in self.data:
            self._minimum()
        if self.given("combinesWith"):
            chosen = self.data.get("combinesWith") or {}
            self.columns["combines_with"] = json.dumps({k: bool(chosen.get(k)) for k in COMBINES})
        if self.given("appliesOncePerCustomer"):
            self.columns["applies_once_per_customer"] = int(bool(self.data.get("appliesOncePerCustomer")))
        if "usageLimit" in self.data:
            limit = self.data["usageLimit"]
            if limit is not None and limit < 1:
                self.error(["usageLimit"], "GREATER_THAN", "Usage limit must be greater than 0")
            self.columns["usage_limit"] = limit
        destination = self.data.get("destination")
        if self.kind == FREE_SHIPPING and destination is not None and not destination.get("all"):
            self.error(["destination"], "INVALID",
                       "devstore ships free to all countries only: destination { all: true }")
        return self.columns

    def _text(self, key: str, label: str) -> None:
        if not self.given(key):
            return
        text = (self.data.get(key) or "").strip()
        if not text:
            self.error([key], "BLANK", f"{label} can't be blank")
        elif len(text) > MAX_TEXT:
            self.error([key], "TOO_LONG", f"{label} is too long (maximum is {MAX_TEXT} characters)")
        elif key == "code" and self.conn.execute(
                "SELECT 1 FROM code_discounts WHERE shop = ? AND code = ? COLLATE NOCASE AND id IS NOT ?",
                (self.ctx.shop, text, self.existing["id"] if self.existing else None)).fetchone():
            self.error([key], "TAKEN", "Code must be unique. Please try a different code.")
        self.columns[key] = text

    def _date(self, key: str, label: str, kept: str | None) -> str | None:
        if key not in self.data:
            return kept
        if self.data[key] is None:
            return None
        try:
            moment = parse_iso(str(self.data[key]))
        except ValueError:
            self.error([key], "INVALID", f"{label} is invalid")
            return kept
        return iso(moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc))

    def _dates(self) -> None:
        old = self.existing
        starts = self._date("startsAt", "Starts at", old["starts_at"] if old else iso(self.ctx.now))
        ends = self._date("endsAt", "Ends at", old["ends_at"] if old else None)
        if starts is None:
            self.error(["startsAt"], "BLANK", "Starts at can't be blank")
        elif ends is not None and ends <= starts:
            self.error(["endsAt"], "END_DATE_BEFORE_START_DATE", "Ends at needs to be after starts_at")
        self.columns.update(starts_at=starts, ends_at=ends)

    def _eligibility(self) -> None:
        context, selection = self.data.get("context"), self.data.get("customerSelection")
        if context is not None and selection is not None:
            self.error(["context"], "CONFLICT", "Use context or customerSelection (deprecated), not both")
            return
        if context is not None:
            chosen, path = [k for k in ("all", "customerSegments") if context.get(k) is not None], ["context"]
        elif selection is not None:
            chosen = [k for k in ("customerSegments",) if selection.get(k) is not None]
            chosen = ["all", *chosen] if selection.get("all") else chosen
            context, path = selection, ["customerSelection"]
        else:
            if self.existing is None:
                self.columns["segment_ids"] = None       # all customers
            return
        if len(chosen) != 1:
            self.error(path, "TOO_MANY_ARGUMENTS" if chosen else "BLANK",
                       "Choose one of all customers or customer segments")
            return
        if chosen == ["all"]:
            self.columns["segment_ids"] = None
            return
        self._segments(context["customerSegments"], [*path, "customerSegments"])

    def _segments(self, change: Obj, path: list[str]) -> None:
        old = self.existing
        current = json.loads(old["segment_ids"] or "[]") if old is not None else []
        added = []
        for value in change.get("add") or []:
            segment_id = parse_gid(value, "Segment")
            if segment_row(self.conn, self.ctx.shop, segment_id) is None:
                self.error([*path, "add"], "INVALID", f"Customer segment {value} does not exist")
            else:
                added.append(segment_id)
        removed = {parse_gid(value, "Segment") for value in change.get("remove") or []}
        chosen = [s for s in dict.fromkeys([*current, *added]) if s not in removed]
        if not chosen and len(added) == len(change.get("add") or []):     # (a bad id is error enough)
            self.error(path, "BLANK", "Customer segments can't be blank")
        self.columns["segment_ids"] = json.dumps(chosen)

    def _cents(self, value: Any, path: list[str], label: str) -> int | None:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.error(path, "INVALID", f"{label} is invalid")
            return None
        if not amount.is_finite() or amount <= 0:
            self.error(path, "GREATER_THAN", f"{label} must be greater than 0")
            return None
        return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))

    def _customer_gets(self) -> None:
        gets = self.data.get("customerGets")
        if gets is None:
            self.error(["customerGets"], "BLANK", "Customer gets can't be blank")
            return
        items = gets.get("items")
        if items is not None and not items.get("all"):
            self.error(["customerGets", "items"], "INVALID",
                       "devstore discounts apply to all items: items { all: true }")
        value = gets.get("value")
        if value is None:
            if self.existing is None:
                self.error(["customerGets", "value"], "BLANK", "Value can't be blank")
            return
        path = ["customerGets", "value"]
        percentage, amount = value.get("percentage"), value.get("discountAmount")
        if (percentage is None) == (amount is None):
            self.error(path, "INVALID", "Give one of percentage or discountAmount")
        elif percentage is not None:
            if not 0 < percentage <= 1:
                self.error([*path, "percentage"], "VALUE_OUTSIDE_RANGE", "Value must be between 0.0 and 1.0")
            self.columns["value"] = json.dumps({"percentage": percentage})
        else:
            cents = self._cents(amount.get("amount"), [*path, "discountAmount", "amount"], "Value")
            self.columns["value"] = json.dumps({"amount_cents": cents,
                                                "applies_on_each_item": bool(amount.get("appliesOnEachItem"))})

    def _minimum(self) -> None:
        subtotal = (self.data["minimumRequirement"] or {}).get("subtotal")
        if subtotal is None:
            self.columns["minimum_subtotal_cents"] = None
            return
        self.columns["minimum_subtotal_cents"] = self._cents(
            subtotal.get("greaterThanOrEqualToSubtotal"),
            ["minimumRequirement", "subtotal", "greaterThanOrEqualToSubtotal"], "Minimum subtotal")
