"""Live traffic for a seeded shop: random, realistic shopper and merchant actions that flow out as webhooks.

Every action goes through `mutations` or `refund_mutations`, so the app receives it exactly as it would
from Shopify (carts/create -> checkouts/create -> orders/create + orders/paid -> checkouts/update for a
web order; an abandoned checkout that never completes; refunds and cancellations on recent orders;
customers editing their details and marketing consent). All randomness comes from one
`random.Random(seed)`, and tokens are drawn from it too, so the same seed on the same starting store
does the same things. Products and customers are read from the store (the generator fills them).

With a `cost_change_rate`, that share of steps is instead the merchant editing a variant's unit cost
(inventory_items/update). Whether a step is one is drawn from a second stream of the seed, so the
shopper traffic of a seed without cost changes is what it always was.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from . import inventory, mutations, refund_mutations
from .state import DevStore, utcnow

# Relative frequency of each action.
ACTION_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("order_customer", 30),
    ("order_guest", 10),
    ("checkout_abandon", 18),
    ("cart_update", 20),
    ("customer_edit", 12),
    ("refund", 5),
    ("cancel", 5),
)
DEVICES = (("mobile", 55), ("desktop", 38), ("tablet", 5), ("pos", 2))
SHIPPING = (("standard", 70), ("express", 18), ("overnight", 5), ("pickup", 7))
DISCOUNTS = (("WELCOME10", 10), ("SAVE15", 15), ("VIP20", 20))
CANCEL_REASONS = ("customer", "inventory", "fraud", "declined", "other")
LAST_NAMES = ("Smith", "Garcia", "Nguyen", "Okafor", "Kowalski", "Rossi", "Tanaka", "Dubois", "Haddad", "Moreau")
RECENT = 200  # refunds, cancellations and cart edits pick among the most recent rows


class TrafficSimulator:
    """Drives one shop with weighted random actions at a steady rate."""

    def __init__(self, store: DevStore, shop: str, *, seed: int, rate_per_second: float,
                 now: dt.datetime | Callable[[], dt.datetime] | None = None, cost_change_rate: float = 0.0):
        """`now`: None for the wall clock; a callable returning the time; or a datetime, which starts a
        simulated clock that advances 1/rate_per_second per action (replaying traffic into the past).
        `cost_change_rate`: the share of steps that are a merchant's unit-cost edit instead."""
        if store.shop(shop) is None:
            raise ValueError(f"no shop {shop}")
        if not 0.0 <= cost_change_rate <= 1.0:
            raise ValueError("cost_change_rate is a share between 0 and 1")
        self._store = store
        self._shop = shop
        self._rng = Random(seed)
        self._cost_rng = Random(f"{seed}/costs")
        self._cost_change_rate = cost_change_rate
        self._rate = float(rate_per_second)
        self._now_fn: Callable[[], dt.datetime] | None = now if callable(now) else None
        self._sim_now: dt.datetime | None = now if isinstance(now, dt.datetime) else None
        self._stop = threading.Event()

    # -- driving ------------------------------------------------------------------------------------
    def run(self, count: int | None = None, duration: float | None = None) -> dict[str, int]:
        """Perform actions at `rate_per_second` until `count` actions or `duration` seconds (or stop());
        returns how many of each action ran."""
        if count is None and duration is None:
            raise ValueError("run() needs a count or a duration")
        interval = 1.0 / self._rate if self._rate > 0 else 0.0
        started = time.monotonic()
        deadline = started + duration if duration is not None else None
        counts: Counter[str] = Counter()
        done = 0
        while not self._stop.is_set():
            if (count is not None and done >= count) or (deadline is not None and time.monotonic() >= deadline):
                break
            counts[self.step()] += 1
            done += 1
            # The n-th action is due at started + n * interval, so slow steps do not lower the rate.
            wake = started + done * interval
            if deadline is not None:
                wake = min(wake, deadline)
            delay = wake - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
        self._stop.clear()  # a stop ends one run; the simulator can run again
        return dict(counts)

    def stop(self) -> None:
        """Make the current run() (or, if none is under way, the next one) return after its current action."""
        self._stop.set()

    def step(self) -> str:
        """One weighted random action; returns its name (a fallback's, when the drawn one is not possible)."""
        if not self._variants():
            raise RuntimeError(f"{self._shop} has no active products; seed the store first")
        if self._cost_change_rate and self._cost_rng.random() < self._cost_change_rate:
            self._cost_change(self._moment())
            return "cost_change"
        action = self._weighted(ACTION_WEIGHTS)
        moment = self._moment()
        for name in (action, "order_guest"):  # a guest can always buy, whatever else is missing
            if getattr(self, f"_{name}")(moment):
                return name
        raise RuntimeError("no action was possible")

    # -- time and dice ------------------------------------------------------------------------------
    def _moment(self) -> dt.datetime:
        if self._now_fn is not None:
            return self._now_fn()
        if self._sim_now is not None:
            current = self._sim_now
            self._sim_now += dt.timedelta(seconds=1.0 / self._rate if self._rate > 0 else 1.0)
            return current
        return utcnow()

    def _weighted(self, options: Sequence[tuple[str, int]]) -> str:
        names, weights = zip(*options)
        return self._rng.choices(names, weights=weights)[0]

    def _token(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def _ip(self) -> str:
        return ".".join(str(self._rng.randint(1, 254)) for _ in range(4))

    # -- reads --------------------------------------------------------------------------------------
    def _variants(self) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in self._store.conn().execute(
            "SELECT v.id, v.price_cents FROM products p JOIN variants v ON v.product_id = p.id "
            "WHERE p.shop = ? AND p.status = 'active' ORDER BY v.id", (self._shop,))]

    def _random_customer(self) -> Any:
        """A uniformly drawn customer, found by index range rather than OFFSET (stores hold millions)."""
        conn = self._store.conn()
        low, high = conn.execute("SELECT MIN(id), MAX(id) FROM customers WHERE shop = ?", (self._shop,)).fetchone()
        if low is None:
            return None
        return conn.execute("SELECT * FROM customers WHERE shop = ? AND id >= ? ORDER BY id LIMIT 1",
                            (self._shop, self._rng.randint(low, high))).fetchone()

    def _recent(self, table: str, condition: str = "1") -> list[Any]:
        return self._store.conn().execute(
            f"SELECT * FROM {table} WHERE shop = ? AND {condition} ORDER BY id DESC LIMIT ?",
            (self._shop, RECENT)).fetchall()

    def _basket(self, size: int | None = None) -> list[dict]:
        variants = self._variants()
        count = size or self._rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
        picks = self._rng.sample(variants, min(count, len(variants)))
        return [{"variant_id": variant_id, "quantity": self._rng.choices((1, 2, 3), weights=(80, 15, 5))[0]}
                for variant_id, _ in picks]

    # -- actions (each returns False when it cannot run on the store as it is) ----------------------
    def _order_customer(self, moment: dt.datetime) -> bool:
        customer = self._random_customer()
        if customer is None:
            return False
        self._place_order(moment, customer_id=customer["id"], email=customer["email"])
        return True

    def _order_guest(self, moment: dt.datetime) -> bool:
        self._place_order(moment, customer_id=None, email=f"guest{self._rng.randrange(10 ** 7)}@example.com")
        return True

    def _place_order(self, moment: dt.datetime, *, customer_id: int | None, email: str) -> None:
        lines = self._basket()
        device = self._weighted(DEVICES)
        discount = []
        if self._rng.random() < 0.25:
            code, percent = self._rng.choice(DISCOUNTS)
            prices = dict(self._variants())
            gross = sum(prices[line["variant_id"]] * line["quantity"] for line in lines)
            discount = [{"code": code, "amount_cents": gross * percent // 100, "type": "percentage",
                         "value": f"{percent}.0"}]
        if device == "pos":  # in person: no cart, no checkout, nothing shipped
            mutations.order_create(self._store, self._shop, line_items=lines, customer_id=customer_id, email=email,
                                   discount_codes=discount, shipping=None, device="pos", source_name="pos",
                                   now=moment)
            return
        cart_token, checkout_token = self._token(), self._token()
        mutations.cart_create(self._store, self._shop, line_items=lines, token=cart_token, now=moment)
        mutations.checkout_create(self._store, self._shop, line_items=lines, customer_id=customer_id, email=email,
                                  cart_token=cart_token, token=checkout_token, device=device, now=moment)
        mutations.order_create(self._store, self._shop, line_items=lines, customer_id=customer_id, email=email,
                               discount_codes=discount, shipping=self._weighted(SHIPPING), device=device,
                               source_name="web", browser_ip=self._ip(), cart_token=cart_token,
                               checkout_token=checkout_token, now=moment)

    def _checkout_abandon(self, moment: dt.datetime) -> bool:
        lines = self._basket()
        customer = self._random_customer() if self._rng.random() < 0.7 else None
        cart_token = self._token()
        mutations.cart_create(self._store, self._shop, line_items=lines, token=cart_token, now=moment)
        mutations.checkout_create(
            self._store, self._shop, line_items=lines, customer_id=customer["id"] if customer else None,
            email=None if customer else f"visitor{self._rng.randrange(10 ** 7)}@example.com",
            cart_token=cart_token, token=self._token(), device=self._weighted(DEVICES[:3]), now=moment)
        return True

    def _cart_update(self, moment: dt.datetime) -> bool:
        carts = self._recent("carts")
        if not carts:
            mutations.cart_create(self._store, self._shop, line_items=self._basket(), token=self._token(),
                                  now=moment)
            return True
        cart = self._rng.choice(carts)
        lines = [{"variant_id": line["variant_id"], "quantity": line["quantity"],
                  **({} if line.get("variant_id") else {"title": line["title"], "price_cents": line["price_cents"]})}
                 for line in json.loads(cart["line_items"])]
        if lines and self._rng.random() < 0.5:
            changed = self._rng.choice(lines)
            changed["quantity"] = max(1, changed["quantity"] + self._rng.choice((-1, 1)))
        else:
            lines.extend(self._basket(1))
        mutations.cart_update(self._store, self._shop, cart["id"], line_items=lines, now=moment)
        return True

    def _customer_edit(self, moment: dt.datetime) -> bool:
        customer = self._random_customer()
        if customer is None:
            return False
        change = self._rng.choice(("email_marketing", "sms_marketing", "last_name", "phone"))
        if change == "email_marketing":
            state = "UNSUBSCRIBED" if customer["email_marketing_state"] == "SUBSCRIBED" else "SUBSCRIBED"
            fields: dict[str, Any] = {"email_marketing_state": state}
        elif change == "sms_marketing":
            state = "UNSUBSCRIBED" if customer["sms_marketing_state"] == "SUBSCRIBED" else "SUBSCRIBED"
            fields = {"sms_marketing_state": state,
                      "phone": customer["phone"] or f"+1555{self._rng.randrange(10 ** 7):07d}"}
        elif change == "last_name":
            fields = {"last_name": self._rng.choice(LAST_NAMES)}
        else:
            fields = {"phone": f"+1555{self._rng.randrange(10 ** 7):07d}"}
        mutations.customer_update(self._store, self._shop, customer["id"], now=moment, **fields)
        return True

    def _refund(self, moment: dt.datetime) -> bool:
        orders = self._recent("orders", "cancelled_at IS NULL AND financial_status IN ('paid', 'partially_refunded')")
        self._rng.shuffle(orders)
        for order in orders:
            refunded = refund_mutations.refund_create(
                self._store, self._shop, order["id"], now=moment, note="Customer return",
                line_items=[{"line_item_id": self._line_of(order["id"]), "quantity": 1}])
            if refunded is not None:
                return True
        return False

    def _line_of(self, order_id: int) -> int:
        ids = [r[0] for r in self._store.conn().execute(
            "SELECT id FROM line_items WHERE order_id = ? ORDER BY id", (order_id,))]
        return self._rng.choice(ids)

    def _cancel(self, moment: dt.datetime) -> bool:
        orders = self._recent("orders", "cancelled_at IS NULL AND refunded_cents = 0 AND financial_status = 'paid'")
        if not orders:
            return False
        order = self._rng.choice(orders)
        refund_mutations.order_cancel(self._store, self._shop, order["id"], reason=self._rng.choice(CANCEL_REASONS),
                                      now=moment)
        return True

    def _cost_change(self, moment: dt.datetime) -> None:
        """The merchant re-prices a variant's cost per item (a new supplier price), now and then entering
        one that was missing or clearing one."""
        rng = self._cost_rng
        variant_id, price = rng.choice(self._variants())
        low, high = inventory.COST_SHARE
        cents = None if rng.random() < inventory.NO_COST_SHARE else round(price * rng.uniform(low, high))
        inventory.variant_cost_set(self._store, self._shop, variant_id, cents, now=moment)
