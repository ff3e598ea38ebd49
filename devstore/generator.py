"""The store generator: seeds a devstore shop with a catalog and two years of persona-driven customer
history (orders, line items, refunds, abandoned checkouts, carts), deterministic by seed and streamed
into SQLite in batches so a million customers fit in bounded memory."""
from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import time
from dataclasses import dataclass, field

from .generator_orders import Batch, Buyer, OrderMixin
from .generator_shop import DAY, PRE_DAYS, CalendarMixin, CatalogMixin, Plan, pick
from .personas import (
    ACCOUNT_STATES, AREA_CODES, EMAIL_DOMAINS, EMAIL_STATES, FIRST_NAMES, LAPSED_QUIET_DAYS, LAST_NAMES, MERCHANT_TAGS,
    NEW_CUSTOMER_DAYS, PERSONAS, REPLENISH_INTERVAL, REPLENISH_JITTER, SMS_STATES, TAX_BASIS_POINTS, USER_AGENTS,
    holiday_windows,
)
from .state import ID_BASE, DevStore

__all__ = ["PERSONAS", "SeedReport", "holiday_windows", "seed_shop"]

GUEST_ORDER_SHARE = 0.06    # guest checkouts, relative to customer orders


@dataclass
class SeedReport:
    """What one `seed_shop` call wrote (plain fields, so `vars(report)` is JSON-ready)."""

    shop: str
    customers: int = 0
    orders: int = 0            # including guest orders
    guest_orders: int = 0
    line_items: int = 0
    refunds: int = 0
    cancelled: int = 0
    test_orders: int = 0
    checkouts: int = 0         # abandoned checkouts
    carts: int = 0
    products: int = 0
    variants: int = 0
    personas: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return (self.customers + self.orders + self.line_items + self.refunds + self.checkouts + self.carts
                + self.products + self.variants)


def seed_shop(store: DevStore, shop: str, *, customers: int, seed: int, now: dt.datetime | None = None,
              years: int = 2, batch: int = 5000, orders_scale: float = 1.0) -> SeedReport:
    """Seed `shop` (created if missing) with `customers` customers and their history up to `now`.

    The history ends at the start of `now`'s UTC day (default: today). The same seed, customer
    count and day give identical rows, ids included, in a fresh store. No events are emitted.

    `orders_scale` sets the order volume without changing who the customers are: every repeat
    buyer's drawn order count (2 or more) is multiplied by it, rounded at random, and never drops
    below 2; one-time buyers keep their one order and customers who never ordered keep none, so
    each persona still means what its name says. Guest orders follow customer orders. 1.0 (the
    default) draws nothing extra, so existing seeds give the same rows as before; 1.32 takes the
    ~3.9 orders per customer of the personas to ~5.0.
    """
    if orders_scale <= 0:
        raise ValueError("orders_scale must be positive")
    started = time.perf_counter()
    row = store.shop(shop) or store.shop_create(shop)
    now = (now or dt.datetime.now(dt.timezone.utc))
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    today = now.astimezone(dt.timezone.utc).date()
    rng = random.Random(seed)
    conn = store.conn()
    saved = {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("synchronous", "cache_size")}
    # History is a bulk load: nothing is lost by skipping fsyncs, and a big page cache keeps the
    # randomly ordered indexes (emails, tokens, updated_at) from thrashing.
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    try:
        gen = _Generator(store, shop, row["currency"], rng, today, years, orders_scale, seed=seed)
        report = gen.report
        gen.prepare_shop()
        remaining = customers
        while remaining > 0:
            size = min(batch, remaining)
            gen.run_batch(size)
            remaining -= size
    finally:
        for name, value in saved.items():
            conn.execute(f"PRAGMA {name}={value}")
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _Generator(CalendarMixin, CatalogMixin, OrderMixin):
    """Holds the shop-wide context (calendar, catalog, counters) and generates batch after batch."""

    def __init__(self, store: DevStore, shop: str, currency: str, rng: random.Random, today: dt.date,
                 years: int, orders_scale: float = 1.0, *, seed: int = 0) -> None:
        self.store = store
        self.seed = seed            # the catalog's unit costs come from their own stream of it
        self.orders_scale = orders_scale
        self.shop = shop
        self.currency = currency
        self.rng = rng
        self.r = rng.random
        self.report = SeedReport(shop=shop, personas=dict.fromkeys(PERSONAS, 0))
        start = _years_before(today, years)
        self.history_start = start
        self.days = (today - start).days                   # H: the history covers days [0, H)
        self.origin = start - dt.timedelta(days=PRE_DAYS)  # time 0 of the generator's clock
        self.now_t = (PRE_DAYS + self.days) * DAY
        self._calendar()

    # -- batches -------------------------------------------------------------------------------
    def run_batch(self, size: int) -> None:
        batch = Batch()
        for cid in self.store.next_ids("Customer", size):
            self._customer(cid, batch)
        self._write(batch)

    def _write(self, batch: Batch) -> None:
        """Reserve ids for the batch, attach them, and insert everything in one transaction."""
        next_ids = self.store.next_ids
        o = next_ids("Order", len(batch.orders)).start
        li = next_ids("LineItem", len(batch.lines)).start
        rf = next_ids("Refund", len(batch.refunds)).start
        ck = next_ids("Checkout", len(batch.checkouts)).start
        ct = next_ids("Cart", len(batch.carts)).start
        shop = self.shop
        orders = [(o + i,) + row for i, row in enumerate(batch.orders)]
        lines = [(li + i, o + order) + row for i, (order, row) in enumerate(batch.lines)]
        refunds = [(rf + i, o + order, shop, created, note, amount,
                    json.dumps([{"line_item_id": li + line, "quantity": qty, "subtotal_cents": cents}
                                for line, qty, cents in refunded]))
                   for i, (order, created, note, amount, refunded) in enumerate(batch.refunds)]
        checkouts = [(ck + i,) + row for i, row in enumerate(batch.checkouts)]
        carts = [(ct + i,) + row for i, row in enumerate(batch.carts)]
        with self.store.tx() as conn:
            _insert(conn, "customers", _CUSTOMER_COLUMNS, batch.customers)
            _insert(conn, "orders", _ORDER_COLUMNS, orders)
            _insert(conn, "line_items", _LINE_COLUMNS, lines)
            _insert(conn, "refunds", _REFUND_COLUMNS, refunds)
            _insert(conn, "checkouts", _CHECKOUT_COLUMNS, checkouts)
            _insert(conn, "carts", _CART_COLUMNS, carts)
        report = self.report
        report.customers += len(batch.customers)
        report.orders += len(orders)
        report.line_items += len(lines)
        report.refunds += len(refunds)
        report.checkouts += len(checkouts)
        report.carts += len(carts)

    # -- customers -----------------------------------------------------------------------------
    def _customer(self, cid: int, batch: Batch) -> None:
        r = self.r
        plan = self.plans[PERSONAS[pick(self.persona_pick, r())]]
        persona = plan.persona
        self.report.personas[plan.name] += 1
        serial = cid - ID_BASE["Customer"]
        first = FIRST_NAMES[int(r() * len(FIRST_NAMES))]
        last = LAST_NAMES[int(r() * len(LAST_NAMES))]
        email = f"{first.lower()}.{last.lower()}{serial}@{EMAIL_DOMAINS[int(r() * len(EMAIL_DOMAINS))]}"
        buyer = self._buyer(cid, email, plan)

        order_times = self._order_times(plan, self._order_count(persona.orders[int(r() * len(persona.orders))]))
        checkout_times = self._checkout_times(plan, persona.abandoned[int(r() * len(persona.abandoned))],
                                              order_times)
        activity = order_times + checkout_times
        recent_floor = (PRE_DAYS + self.days - NEW_CUSTOMER_DAYS + 1) * DAY
        if activity:
            first_t = min(activity)
            floor = recent_floor if persona.timing == "recent" else 0
            created = first_t - 60 - int(r() * min(20 * DAY, first_t - 60 - floor))
            latest = max(activity)
        else:   # signed up (newsletter, account) without buying
            created = self.at(self.day(0, self.days))
            latest = created
        if r() < 0.1 and persona.timing != "lapsed":   # a later profile edit
            latest = max(latest, created + int(r() * (self.now_t - created)))
        phone = f"+1{AREA_CODES[serial % len(AREA_CODES)]}{serial % 10_000_000:07d}" if r() < 0.65 else None
        sms = _weighted(SMS_STATES, r()) if phone else "NOT_SUBSCRIBED"
        if phone and persona.name == "mobile_first" and r() < 0.25:
            sms = "SUBSCRIBED"
        u = r()   # merchants tag a few customers by hand
        tags = "[]" if u > 0.08 else json.dumps(self.rng.sample(MERCHANT_TAGS, 2 if u < 0.01 else 1))
        batch.customers.append((
            cid, self.shop, first, last, email, phone, _weighted(ACCOUNT_STATES, r()),
            _weighted(EMAIL_STATES, r()), sms, tags, "Prefers email contact" if r() < 0.01 else None,
            0 if r() < 0.05 else 1, plan.name, self.iso(created), self.iso(latest),
        ))
        for t in order_times:
            self._order(buyer, t, batch)
            if r() < GUEST_ORDER_SHARE:   # drawn per customer so batch size never changes the output
                self._guest_order(buyer, (order_times[0], order_times[-1]), batch)
        for t in checkout_times:
            self._abandoned_checkout(buyer, t, batch)

    def _order_count(self, drawn: int) -> int:
        """The persona's drawn order count, scaled by `orders_scale` for repeat buyers only."""
        if self.orders_scale == 1.0 or drawn < 2:
            return drawn
        return max(2, int(drawn * self.orders_scale + self.r()))

    def _buyer(self, cid: int | None, email: str, plan: Plan) -> Buyer:
        r = self.r
        buyer = Buyer(cid, email, plan)
        buyer.tax_bp = TAX_BASIS_POINTS[int(r() * len(TAX_BASIS_POINTS))]
        ios = r() < 0.55
        desktop = USER_AGENTS["desktop"]
        phone = USER_AGENTS["ios" if ios else "android"]
        buyer.uas = (desktop[int(r() * len(desktop))], phone[int(r() * len(phone))],
                     USER_AGENTS["ios_tablet" if ios else "android_tablet"][0])   # by device index
        buyer.app_source = ("iphone", USER_AGENTS["ios_app"][0]) if ios else ("android", USER_AGENTS["android_app"][0])
        buyer.ip = f"100.{64 + int(r() * 64)}.{int(r() * 256)}.{1 + int(r() * 254)}"
        if plan.name == "replenisher":
            favourite = self.consumables[int(r() * len(self.consumables))]
            pool = plan.type_pools[favourite]
            buyer.staple = pool[int(r() * len(pool))]
        else:
            favourite = self.type_names[int(r() * len(self.type_names))]
        buyer.pool = plan.pool
        buyer.fav_pool = plan.type_pools[favourite]
        if plan.name == "cart_abandoner":
            buyer.cart_high = r() < 0.5
        return buyer

    def _order_times(self, plan: Plan, count: int) -> list[int]:
        """When the customer ordered, as generator-clock seconds, oldest first."""
        r, day, at, h = self.r, self.day, self.at, self.days
        timing = plan.persona.timing
        if count == 0:
            return []
        if timing == "interval":
            return self._replenish_times(count)
        if timing == "holiday":
            times = []
            for _ in range(count):
                if r() < 0.92:
                    lo, hi = self.windows[int(r() * len(self.windows))]
                    times.append(self.at_midday(lo + int(r() * (hi - lo))))
                else:
                    times.append(at(day(0, h)))
            return sorted(times)
        if timing == "recent":
            return sorted(self.at_midday(day(h - NEW_CUSTOMER_DAYS + 1, h)) for _ in range(count))
        if timing == "spread":   # independent visits over the whole history
            return sorted(at(day(0, h)) for _ in range(count))
        # loyal customers start early and keep coming back; lapsing ones stopped long ago
        end = h - LAPSED_QUIET_DAYS if timing == "lapsed" else h
        first = day(0, end // 2 if timing == "lapsed" else int(h * 0.35))
        return [at(first)] + sorted(at(day(first, end)) for _ in range(count - 1))

    def _replenish_times(self, count: int) -> list[int]:
        """Orders at the customer's own 25-35 day rhythm, ending somewhere in the last cycle so some
        customers are due (or overdue) for their next order today."""
        r = self.r
        interval = REPLENISH_INTERVAL[0] + int(r() * (REPLENISH_INTERVAL[1] - REPLENISH_INTERVAL[0] + 1))
        d = self.days - 1 - int(r() * (interval + 10))
        days: list[int] = []
        while len(days) < count and d >= 0:
            days.append(d)
            d -= interval + int(r() * (2 * REPLENISH_JITTER + 1)) - REPLENISH_JITTER
        return [self.at_midday(d) for d in reversed(days)]

    def _checkout_times(self, plan: Plan, count: int, order_times: list[int]) -> list[int]:
        if count == 0:
            return []
        r, day, at, h = self.r, self.day, self.at, self.days
        timing = plan.persona.timing
        if plan.name == "cart_abandoner":
            times = [at(day(max(0, h - 120), h)) for _ in range(count)]
            if r() < 0.5:
                times[0] = at(day(h - 7, h))
            return times
        if timing == "lapsed":
            return [at(day(0, h - LAPSED_QUIET_DAYS)) for _ in range(count)]
        if timing == "recent":
            return [self.at_midday(day(h - NEW_CUSTOMER_DAYS + 1, h)) for _ in range(count)]
        first = order_times[0] // DAY - PRE_DAYS if order_times else 0
        return [at(day(first, h)) for _ in range(count)]


_CUSTOMER_COLUMNS = ("id", "shop", "first_name", "last_name", "email", "phone", "state", "email_marketing_state",
                     "sms_marketing_state", "tags", "note", "verified_email", "persona", "created_at", "updated_at")
_ORDER_COLUMNS = ("id", "shop", "number", "name", "customer_id", "email", "created_at", "processed_at",
                  "updated_at", "cancelled_at", "cancel_reason", "closed_at", "financial_status",
                  "fulfillment_status", "currency", "subtotal_cents", "discount_cents", "shipping_cents",
                  "tax_cents", "total_cents", "refunded_cents", "discount_codes", "source_name", "device",
                  "user_agent", "browser_ip", "shipping_title", "shipping_code", "test", "cart_token",
                  "checkout_token", "tags")
_LINE_COLUMNS = ("id", "order_id", "shop", "product_id", "variant_id", "title", "vendor", "product_type", "sku",
                 "quantity", "price_cents", "discount_cents")
_REFUND_COLUMNS = ("id", "order_id", "shop", "created_at", "note", "amount_cents", "line_items")
_CHECKOUT_COLUMNS = ("id", "shop", "token", "cart_token", "customer_id", "email", "created_at", "updated_at",
                     "completed_at", "currency", "subtotal_cents", "total_cents", "device", "line_items")
_CART_COLUMNS = ("id", "shop", "token", "created_at", "updated_at", "total_cents", "line_items")


def _insert(conn: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if rows:
        marks = ", ".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)  # noqa: S608


def _weighted(choices: tuple[tuple[str, float], ...], u: float) -> str:
    for value, weight in choices:
        if u < weight:
            return value
        u -= weight
    return choices[-1][0]


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:   # Feb 29 in a year without one
        return day.replace(year=day.year - years, day=28)
