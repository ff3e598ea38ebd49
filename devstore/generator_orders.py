"""How the store generator writes one order and what follows from it: the lines a buyer picks,
discounts, shipping, tax, test orders, cancellations and refunds, plus guest orders and abandoned
checkouts with their carts. Rows go into a `Batch` without ids (generator.py reserves them when it
writes the batch). `OrderMixin` is mixed into `generator._Generator` and draws from its random
stream in a fixed order, so reordering draws here changes every seeded shop.
"""
from __future__ import annotations

from .generator_shop import DAY, PRE_DAYS, V_JSON, V_PRICE, Plan, Variant, pick
from .personas import (
    CANCEL_REASONS, DISCOUNT_CODES, EMAIL_DOMAINS, FIRST_NAMES, FREE_SHIPPING_FROM, HOLIDAY_CODE, SHIPPING,
)

GUEST_KNOWN_EMAIL = 0.3     # guests who typed the email of a customer who has an account
TEST_ORDER_RATE = 0.002
CANCEL_RATE = 0.01
REFUND_RATE = 0.05
FULL_REFUND_SHARE = 0.55


class Batch:
    """Rows of one batch of customers; orders, lines, refunds, checkouts and carts still lack ids."""

    __slots__ = ("customers", "orders", "lines", "refunds", "checkouts", "carts")

    def __init__(self) -> None:
        self.customers: list[tuple] = []
        self.orders: list[tuple] = []
        self.lines: list[tuple[int, tuple]] = []     # (batch order index, row without ids)
        self.refunds: list[tuple] = []               # (batch order index, created, note, amount, lines)
        self.checkouts: list[tuple] = []
        self.carts: list[tuple] = []


class Buyer:
    """Per-customer (or per-guest) choices that stay fixed across their orders."""

    __slots__ = ("cid", "email", "plan", "tax_bp", "uas", "app_source", "ip", "pool", "fav_pool", "staple",
                 "cart_high")

    def __init__(self, cid: int | None, email: str, plan: Plan) -> None:
        self.cid = cid
        self.email = email
        self.plan = plan
        self.staple: Variant | None = None
        self.cart_high: bool | None = None


class OrderMixin:
    """Orders, refunds, guest orders and abandoned checkouts, appended to a batch."""

    def _lines(self, buyer: Buyer, count: int) -> list[tuple[Variant, int]]:
        """Up to `count` distinct variants with quantities (a repeat pick is dropped, as a cart merges it)."""
        r = self.r
        focus = buyer.plan.persona.focus
        picked: list[tuple[Variant, int]] = []
        for i in range(count):
            if i == 0 and buyer.staple is not None:   # the replenisher's usual product, every time
                variant = buyer.staple
            else:
                pool = buyer.fav_pool if r() < focus else buyer.pool
                variant = pool[int(r() * len(pool))]
            u = r()
            if all(variant is not other for other, _ in picked):
                picked.append((variant, 1 if u < 0.8 else 2 if u < 0.95 else 3))
        return picked

    def _order(self, buyer: Buyer, t: int, batch: Batch) -> None:
        r = self.r
        plan = buyer.plan
        lines = self._lines(buyer, plan.items[int(r() * 100)])
        subtotal = 0
        for variant, qty in lines:
            subtotal += variant[V_PRICE] * qty

        d = t // DAY - PRE_DAYS
        chance = plan.persona.discount
        if chance and self.bfcm_day[d]:
            chance = max(chance, 0.5)   # everyone hunts for deals on Black Friday
        line_discounts = [0] * len(lines)
        discount, codes = 0, "[]"
        if r() < chance:
            code, kind, value = HOLIDAY_CODE if self.bfcm_day[d] else DISCOUNT_CODES[int(r() * len(DISCOUNT_CODES))]
            if kind == "fixed_amount" and subtotal < value * 5:
                code, kind, value = DISCOUNT_CODES[1]
            if kind == "percentage":
                line_discounts = [variant[V_PRICE] * qty * value // 100 for variant, qty in lines]
            else:   # spread the fixed amount over the lines in proportion to their value
                line_discounts = [variant[V_PRICE] * qty * value // subtotal for variant, qty in lines]
                line_discounts[-1] += value - sum(line_discounts)
            discount = sum(line_discounts)
            codes = f'[{{"code": "{code}", "amount_cents": {discount}, "type": "{kind}"}}]'

        device = pick(plan.devices, r())
        if device == 3:   # in-store sale on the POS: no browser, no shipping
            source, device_name, ua, ip = "pos", "pos", None, None
            ship_code = ship_title = None
            shipping = 0
        else:
            device_name = _DEVICES[device]
            source, ua, ip = "web", buyer.uas[device], buyer.ip
            if device == 1 and r() < plan.persona.app:
                source, ua = buyer.app_source
            ship_code, ship_title, shipping = SHIPPING[pick(plan.shipping, r())]
            if ship_code == "standard" and subtotal - discount >= FREE_SHIPPING_FROM:
                shipping = 0
        tax = (subtotal - discount) * buyer.tax_bp // 10_000
        total = subtotal - discount + shipping + tax

        now_t = self.now_t
        age = now_t - t
        updated = t
        cancelled_at = cancel_reason = closed_at = None
        financial, fulfillment, refunded, test = "paid", None, 0, 0
        order_index = len(batch.orders)
        line_base = len(batch.lines)
        u = r()
        if u < TEST_ORDER_RATE:
            test = 1
            self.report.test_orders += 1
        elif u < TEST_ORDER_RATE + CANCEL_RATE and age > 2 * DAY:
            updated = t + 3600 + int(r() * 36 * 3600)
            cancelled_at = closed_at = self.iso(updated)
            cancel_reason = CANCEL_REASONS[int(r() * len(CANCEL_REASONS))]
            financial = "voided"
            self.report.cancelled += 1
        if cancelled_at is None and age > 2 * DAY:
            fulfillment = "fulfilled"
            closed = t + (3 + int(r() * 6)) * DAY
            if closed < now_t:
                closed_at = self.iso(closed)
                updated = closed
        if cancelled_at is None and not test and age > DAY and r() < REFUND_RATE / (1 - TEST_ORDER_RATE - CANCEL_RATE):
            refund_t = t + DAY + int(r() * 24 * DAY)
            if refund_t >= now_t:
                refund_t = t + age // 2
            refunded, note, refunded_lines = self._refund(lines, line_discounts, line_base, total)
            financial = "refunded" if refunded == total else "partially_refunded"
            batch.refunds.append((order_index, self.iso(refund_t), note, refunded, refunded_lines))
            updated = max(updated, refund_t)

        shop = self.shop
        for (variant, qty), line_discount in zip(lines, line_discounts):
            batch.lines.append((order_index, (shop, variant[0], variant[1], variant[2], variant[3], variant[4],
                                              variant[5], qty, variant[V_PRICE], line_discount)))
        cart_token = checkout_token = None
        created = self.iso(t)
        if source != "pos":
            cart_token = "%032x" % self.rng.getrandbits(128)
            checkout_token = "%032x" % self.rng.getrandbits(128)
            cart_t = self.iso(t - 120 - int(r() * 1800))
            batch.carts.append((shop, cart_token, cart_t, created, subtotal, _line_json(lines)))
        self.number += 1
        batch.orders.append((
            shop, self.number, f"#{self.number}", buyer.cid, buyer.email, created, created, self.iso(updated),
            cancelled_at, cancel_reason, closed_at, financial, fulfillment, self.currency, subtotal, discount,
            shipping, tax, total, refunded, codes, source, device_name, ua, ip, ship_title, ship_code, test,
            cart_token, checkout_token, "[]" if r() > 0.03 else '["gift"]',
        ))

    def _refund(self, lines: list[tuple[Variant, int]], line_discounts: list[int], line_base: int,
                total: int) -> tuple[int, str, list[tuple[int, int, int]]]:
        """A full refund, one returned line (or unit), or a goodwill credit: (amount, note, lines)."""
        r = self.r
        nets = [variant[V_PRICE] * qty - disc for (variant, qty), disc in zip(lines, line_discounts)]
        if r() < FULL_REFUND_SHARE:
            return total, "Returned", [(line_base + i, qty, nets[i]) for i, (_, qty) in enumerate(lines)]
        if len(lines) > 1:
            i = int(r() * len(lines))
            return nets[i], "Item returned", [(line_base + i, lines[i][1], nets[i])]
        variant, qty = lines[0]
        if qty > 1:
            unit = nets[0] // qty
            return unit, "One unit returned", [(line_base, 1, unit)]
        return max(1, total * (20 + int(r() * 31)) // 100), "Goodwill credit", []

    def _guest_order(self, customer: Buyer, span: tuple[int, int], batch: Batch) -> None:
        """An order without an account. Some guests are the customer who just ordered, not logged in:
        the mirror attaches their order by email, so it falls within the customer's own span of
        orders (`span`: first, last), keeping their recency and new or lapsed status what the persona
        says. A persona whose order count is its promise gets a stranger instead."""
        r = self.r
        self.report.guest_orders += 1
        if r() < GUEST_KNOWN_EMAIL:
            if customer.plan.persona.guest_may_be_customer:
                first, last = span
                t = self.at(self.day(first // DAY - PRE_DAYS, last // DAY - PRE_DAYS + 1))
                email, t = customer.email, min(max(t, first + 60), max(last, first + 60))
            else:   # drawn without the random stream, so the rest of the shop is seeded as before
                email = self._guest_email(self.number % len(FIRST_NAMES), self.number % len(EMAIL_DOMAINS))
                t = self.at(self.day(0, self.days))
        else:
            email = self._guest_email(int(r() * len(FIRST_NAMES)), int(r() * len(EMAIL_DOMAINS)))
            t = self.at(self.day(0, self.days))
        self._order(self._buyer(None, email, self.plans["casual"]), t, batch)

    def _guest_email(self, name: int, domain: int) -> str:
        return f"{FIRST_NAMES[name].lower()}.guest{self.number + 1}@{EMAIL_DOMAINS[domain]}"

    def _abandoned_checkout(self, buyer: Buyer, t: int, batch: Batch) -> None:
        r = self.r
        if buyer.cart_high is None:
            lines = self._lines(buyer, buyer.plan.items[int(r() * 100)])
        elif buyer.cart_high:   # keep adding until the cart is clearly over $100
            lines, subtotal = [], 0
            while subtotal <= 12_000 and len(lines) < 6:
                variant = self.dear[int(r() * len(self.dear))]
                lines.append((variant, 1))
                subtotal += variant[V_PRICE]
        else:
            lines = [(self.cheap[int(r() * len(self.cheap))], 1)]
        subtotal = sum(variant[V_PRICE] * qty for variant, qty in lines)
        total = subtotal + subtotal * buyer.tax_bp // 10_000
        device = pick(buyer.plan.devices, r())
        token, cart_token = "%032x" % self.rng.getrandbits(128), "%032x" % self.rng.getrandbits(128)
        line_json = _line_json(lines)
        created, updated = self.iso(t), self.iso(t + 60 + int(r() * 900))
        batch.carts.append((self.shop, cart_token, self.iso(t - 120 - int(r() * 1800)), created, subtotal,
                            line_json))
        batch.checkouts.append((self.shop, token, cart_token, buyer.cid, buyer.email, created, updated, None,
                                self.currency, subtotal, total, _DEVICES[device if device < 3 else 0], line_json))


_DEVICES = ("desktop", "mobile", "tablet", "pos")


def _line_json(lines: list[tuple[Variant, int]]) -> str:
    return "[" + ", ".join(f"{variant[V_JSON]}{qty}}}" for variant, qty in lines) + "]"
