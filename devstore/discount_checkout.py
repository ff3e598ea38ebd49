"""A shopper redeems a code discount at checkout, and the control API's view of the shop's discounts.

A code applies when the shop has it (any case), it is ACTIVE (started, not ended or deactivated), the
signed-in customer is in one of its segments now (a discount for all customers takes guests too), the
customer has not used it before if it applies once per customer, its usage limit is not reached, and
the cart's subtotal meets its minimum. Then the order is placed with the code as any order carries
one (`mutations.order_create`'s `discount_codes`, so `Order.discountCodes` and the orders/create
webhook show it) and the redemption is counted. Otherwise `DiscountRefused` says why and no order is
placed. The refusals' wording is devstore's.

Free shipping makes the order's shipping free; order_create takes a code's amount off the line items,
so a free-shipping code is recorded with amount 0 and type `shipping`. Counting a redemption after
placing the order leaves a window in which two concurrent checkouts can both take a code's last use.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import mutations
from .customer_segments import segment_customer_is_member
from .discounts import BASIC, discount_by_code, discount_redemptions, discount_segment_ids, discount_status
from .mutation_base import lines_total, resolve_lines
from .state import DevStore, gid, iso, money, utcnow


class DiscountRefused(Exception):
    """The code does not apply to this checkout; the message is what the shopper is told."""


@dataclass(frozen=True)
class Redemption:
    discount_id: int
    code: str
    type: str                       # percentage | fixed_amount | shipping (REST discount_codes[].type)
    value: str                      # REST discount_applications[].value: "10.0" (percent) or "5.00"
    amount_cents: int               # what it takes off the line items
    free_shipping: bool

    def order_code(self) -> dict[str, Any]:
        return {"code": self.code, "amount_cents": self.amount_cents, "type": self.type, "value": self.value}

    def summary(self) -> dict[str, Any]:
        return {"code": self.code, "type": self.type, "value": self.value, "amount": money(self.amount_cents)}


def _amount(row: Any, subtotal_cents: int, quantity: int) -> tuple[str, str, int]:
    """(type, value, amount in cents) of a basic discount on a cart of this subtotal and item count."""
    value = json.loads(row["value"])
    if "percentage" in value:
        percentage = Decimal(str(value["percentage"]))
        cents = int((subtotal_cents * percentage).quantize(Decimal(1), ROUND_HALF_UP))
        return "percentage", f"{percentage * 100:.1f}", cents
    each = value["amount_cents"]
    cents = each * quantity if value["applies_on_each_item"] else each
    return "fixed_amount", money(each), min(cents, subtotal_cents)


def discount_redeem_check(store: DevStore, shop: str, *, code: str, customer_id: int | None,
                          lines: Sequence[dict], now: dt.datetime | None = None) -> Redemption:
    """The redemption this checkout gets with the code; raises DiscountRefused when it gets none."""
    conn = store.conn()
    row = discount_by_code(conn, shop, code)
    if row is None:
        raise DiscountRefused("Enter a valid discount code")
    status = discount_status(row, now or utcnow())
    if status == "SCHEDULED":
        raise DiscountRefused("This discount code isn't active yet")
    if status == "EXPIRED":
        raise DiscountRefused("This discount code has expired")
    segments = discount_segment_ids(row)
    if segments is not None and customer_id is None:
        raise DiscountRefused("Sign in to use this discount code: it is for some customers only")
    if segments is not None and not segment_customer_is_member(store, shop, customer_id, segments):
        raise DiscountRefused("This discount code isn't available to your account")
    if row["applies_once_per_customer"] and customer_id is not None and discount_redemptions(
            conn, row["id"], customer_id):
        raise DiscountRefused("You have already used this discount code")
    if row["usage_limit"] is not None and discount_redemptions(conn, row["id"]) >= row["usage_limit"]:
        raise DiscountRefused("This discount code has reached its usage limit")
    resolved = resolve_lines(store, shop, lines)
    subtotal = lines_total(resolved)
    minimum = row["minimum_subtotal_cents"]
    if minimum is not None and subtotal < minimum:
        raise DiscountRefused(f"Spend {money(minimum)} or more to use this discount code")
    if row["kind"] == BASIC:
        kind, value, cents = _amount(row, subtotal, sum(line["quantity"] for line in resolved))
        return Redemption(row["id"], row["code"], kind, value, cents, free_shipping=False)
    return Redemption(row["id"], row["code"], "shipping", "100.0", 0, free_shipping=True)


def checkout_order_place(store: DevStore, shop: str, *, lines: Sequence[dict], customer_id: int | None,
                         email: str | None, code: str | None) -> tuple[int, Redemption | None]:
    """Place the checkout's order, with the discount code if one is given (DiscountRefused: no order)."""
    redemption = None
    if code and code.strip():
        redemption = discount_redeem_check(store, shop, code=code, customer_id=customer_id, lines=lines)
    order_id = mutations.order_create(
        store, shop, line_items=lines, customer_id=customer_id, email=email,
        discount_codes=[redemption.order_code()] if redemption else (),
        shipping_cents=0 if redemption and redemption.free_shipping else None)
    if redemption is not None:
        with store.tx() as conn:
            conn.execute("INSERT INTO code_discount_redemptions (discount_id, shop, order_id, customer_id, "
                         "amount_cents, redeemed_at) VALUES (?, ?, ?, ?, ?, ?)",
                         (redemption.discount_id, shop, order_id, customer_id, redemption.amount_cents,
                          iso(utcnow())))
    return order_id, redemption


def discounts_listing(store: DevStore, shop: str) -> list[dict[str, Any]]:
    """The shop's code discounts as the control API shows them."""
    conn, now = store.conn(), utcnow()
    rows = conn.execute("SELECT * FROM code_discounts WHERE shop = ? ORDER BY id", (shop,)).fetchall()
    listed = []
    for row in rows:
        value = json.loads(row["value"])
        segments = discount_segment_ids(row)
        listed.append({
            "id": gid("DiscountCodeNode", row["id"]), "kind": row["kind"], "title": row["title"],
            "codes": [row["code"]], "status": discount_status(row, now),
            "starts_at": row["starts_at"], "ends_at": row["ends_at"],
            "segment_ids": None if segments is None else [gid("Segment", s) for s in segments],
            "value": ({"percentage": value["percentage"]} if "percentage" in value else
                      {"amount": money(value["amount_cents"]), "applies_on_each_item": value["applies_on_each_item"]}
                      if value else {"free_shipping": True}),
            "minimum_subtotal": None if row["minimum_subtotal_cents"] is None else money(row["minimum_subtotal_cents"]),
            "applies_once_per_customer": bool(row["applies_once_per_customer"]), "usage_limit": row["usage_limit"],
            "combines_with": json.loads(row["combines_with"]),
            "redemptions": discount_redemptions(conn, row["id"]),
        })
    return listed
