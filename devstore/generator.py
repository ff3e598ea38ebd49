"""The store generator: seeds a devstore shop with a catalog and two years of persona-driven customer
history (orders, line items, refunds, abandoned checkouts, carts), deterministic by seed and streamed
into SQLite in batches so a million customers fit in bounded memory."""
from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from .personas import (
    ACCOUNT_STATES, ADJECTIVES, AREA_CODES, CANCEL_REASONS, DISCOUNT_CODES, EMAIL_DOMAINS, EMAIL_STATES,
    FIRST_NAMES, FREE_SHIPPING_FROM, HOLIDAY_CODE, HOLIDAY_LIFT, HOUR_WEIGHT, LAPSED_QUIET_DAYS, LAST_NAMES,
    MERCHANT_TAGS, MONTH_WEIGHT, NEW_CUSTOMER_DAYS, PERSONA_BY_NAME, PERSONA_DEFS, PERSONAS, PRODUCT_TYPES,
    REPLENISH_INTERVAL, REPLENISH_JITTER, SHIPPING, SMS_STATES, TAX_BASIS_POINTS, USER_AGENTS, Persona,
    holiday_windows,
)
from .state import ID_BASE, DevStore

__all__ = ["PERSONAS", "SeedReport", "holiday_windows", "seed_shop"]

DAY = 86_400
PRE_DAYS = 60          # accounts may be opened up to this long before the history window starts
PRODUCTS = 200
GUEST_ORDER_SHARE = 0.06    # guest checkouts, relative to customer orders
GUEST_KNOWN_EMAIL = 0.3     # guests who typed the email of a customer who has an account
TEST_ORDER_RATE = 0.002
CANCEL_RATE = 0.01
REFUND_RATE = 0.05
FULL_REFUND_SHARE = 0.55


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


# A variant as the generator uses it: (product_id, variant_id, title, vendor, product_type, sku,
# price_cents, JSON of a checkout/cart line up to its quantity value).
Variant = tuple[int, int, str, str, str, str, int, str]
V_PRICE, V_JSON = 6, 7


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
        gen = _Generator(store, shop, row["currency"], rng, today, years, orders_scale)
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


class _Batch:
    """Rows of one batch of customers; orders, lines, refunds, checkouts and carts still lack ids."""

    __slots__ = ("customers", "orders", "lines", "refunds", "checkouts", "carts")

    def __init__(self) -> None:
        self.customers: list[tuple] = []
        self.orders: list[tuple] = []
        self.lines: list[tuple[int, tuple]] = []     # (batch order index, row without ids)
        self.refunds: list[tuple] = []               # (batch order index, created, note, amount, lines)
        self.checkouts: list[tuple] = []
        self.carts: list[tuple] = []


class _Buyer:
    """Per-customer (or per-guest) choices that stay fixed across their orders."""

    __slots__ = ("cid", "email", "plan", "tax_bp", "uas", "app_source", "ip", "pool", "fav_pool", "staple",
                 "cart_high")

    def __init__(self, cid: int | None, email: str, plan: _Plan) -> None:
        self.cid = cid
        self.email = email
        self.plan = plan
        self.staple: Variant | None = None
        self.cart_high: bool | None = None


class _Plan:
    """A persona's weights turned into lookup tables and the catalog slices it buys from."""

    def __init__(self, persona: Persona, by_price: list[Variant], by_type: dict[str, list[Variant]]) -> None:
        self.persona = persona
        self.name = persona.name
        self.items = _table(persona.items, (1, 2, 3, 4))
        self.devices = _cumulative(persona.devices)
        self.shipping = _cumulative(persona.shipping)
        self.pool = _tier(by_price, persona.tier)
        self.type_pools = {name: _tier(variants, persona.tier) for name, variants in by_type.items()}


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    total = float(sum(weights))
    acc, out = 0.0, []
    for weight in weights:
        acc += weight / total
        out.append(acc)
    out[-1] = 1.0
    return tuple(out)


def _pick(cumulative: tuple[float, ...], u: float) -> int:
    for index, bound in enumerate(cumulative):
        if u < bound:
            return index
    return len(cumulative) - 1


def _table(weights: Sequence[float], values: Sequence, size: int = 100) -> tuple:
    """A lookup table where `values` appear in proportion to `weights`: one random index per draw."""
    cumulative = _cumulative(weights)
    return tuple(values[_pick(cumulative, (i + 0.5) / size)] for i in range(size))


def _tier(variants: list[Variant], tier: tuple[float, float]) -> list[Variant]:
    """The price band `tier` (quantiles) of a price-sorted variant list; never empty."""
    lo = int(tier[0] * len(variants))
    hi = max(lo + 1, int(round(tier[1] * len(variants))))
    return variants[lo:hi] or variants[-1:]


class _Generator:
    """Holds the shop-wide context (calendar, catalog, counters) and generates batch after batch."""

    def __init__(self, store: DevStore, shop: str, currency: str, rng: random.Random, today: dt.date,
                 years: int, orders_scale: float = 1.0) -> None:
        self.store = store
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

    # -- calendar ------------------------------------------------------------------------------
    def _calendar(self) -> None:
        """Day-indexed lookups: ISO prefixes, seasonal weights and holiday windows."""
        total_days = PRE_DAYS + self.days + 1
        self.day_prefix = [(self.origin + dt.timedelta(days=i)).isoformat() + "T" for i in range(total_days)]
        self.hour_minute = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
        self.second = [f"{s:02d}Z" for s in range(60)]
        self.hours = _table(HOUR_WEIGHT, range(24), 240)
        holiday_of_day: list[str | None] = [None] * self.days
        windows: list[tuple[int, int]] = []
        for year in range(self.history_start.year, self.history_start.year + (self.days // 365) + 2):
            for name, (first, last) in holiday_windows(year).items():
                lo = max(0, (first - self.history_start).days)
                hi = min(self.days, (last - self.history_start).days + 1)
                if lo < hi:
                    windows.append((lo, hi))
                    for d in range(lo, hi):
                        holiday_of_day[d] = holiday_of_day[d] or name
        self.windows = windows or [(0, self.days)]
        self.bfcm_day = [name == "black_friday_cyber_monday" for name in holiday_of_day]
        cumulative, acc = [0.0], 0.0
        for d in range(self.days):
            day = self.history_start + dt.timedelta(days=d)
            growth = 1.0 + 0.3 * d / self.days           # the shop grows over its history
            acc += MONTH_WEIGHT[day.month - 1] * HOLIDAY_LIFT.get(holiday_of_day[d] or "", 1.0) * growth
            cumulative.append(acc)
        self.season = cumulative

    def iso(self, t: int) -> str:
        return self.day_prefix[t // DAY] + self.hour_minute[t % DAY // 60] + self.second[t % 60]

    def day(self, lo: int, hi: int) -> int:
        """A history day in [lo, hi), weighted by seasonality."""
        season = self.season
        u = season[lo] + self.r() * (season[hi] - season[lo])
        return min(hi - 1, max(lo, bisect_right(season, u) - 1))

    def at(self, d: int) -> int:
        """A time on history day `d` at a typical shopping hour."""
        return (PRE_DAYS + d) * DAY + self.hours[int(self.r() * 240)] * 3600 + int(self.r() * 3600)

    def at_midday(self, d: int) -> int:
        """A time on day `d` between 12:00 and 23:59 UTC: the same calendar day in US time zones, so
        holiday-window orders stay inside the window whichever way a reader buckets dates."""
        return (PRE_DAYS + d) * DAY + 43_200 + int(self.r() * 43_200)

    # -- catalog -------------------------------------------------------------------------------
    def prepare_shop(self) -> None:
        conn = self.store.conn()
        # The shop existed before the history it holds; keep its created_at deterministic too.
        opened = _iso_date(self.origin - dt.timedelta(days=30))
        with self.store.tx() as tx:
            tx.execute("UPDATE shops SET created_at = ? WHERE domain = ? AND created_at > ?",
                       (opened, self.shop, opened))
        if conn.execute("SELECT 1 FROM products WHERE shop = ? LIMIT 1", (self.shop,)).fetchone() is None:
            self._create_catalog()
        self._load_catalog()
        last = conn.execute("SELECT MAX(number) FROM orders WHERE shop = ?", (self.shop,)).fetchone()[0]
        self.number = max(1000, last or 0)

    def _create_catalog(self) -> None:
        r, rng = self.r, self.rng
        products: list[tuple] = []
        variants: list[tuple] = []
        product_ids = self.store.next_ids("Product", PRODUCTS)
        specs: list[tuple[int, str, int]] = []   # (product type index, title, variant count)
        taken: set[str] = set()
        for i in range(PRODUCTS):
            kind = PRODUCT_TYPES[i % len(PRODUCT_TYPES)]
            title = f"{rng.choice(ADJECTIVES)} {rng.choice(kind.nouns)}"
            while title in taken:
                title = f"{rng.choice(ADJECTIVES)} {rng.choice(kind.nouns)}"
            taken.add(title)
            specs.append((i % len(PRODUCT_TYPES), title, min(len(kind.options), 1 + int(r() * 3))))
        variant_ids = iter(self.store.next_ids("ProductVariant", sum(s[2] for s in specs)))
        for pid, (type_index, title, count) in zip(product_ids, specs):
            kind = PRODUCT_TYPES[type_index]
            created = self.iso(int(r() * PRE_DAYS * DAY))
            handle = title.lower().replace(" ", "-").replace(".", "")
            products.append((pid, self.shop, title, f"{handle}-{pid % 10_000}", kind.name, rng.choice(kind.vendors),
                             json.dumps([kind.name.lower()]), "active", created, created))
            lo, hi = kind.price   # most of a range is cheap items, a few are premium
            base = (lo + int((hi - lo) * r() ** 2)) * 100 - 1
            for v in range(count):
                price = int(base * (1 + 0.5 * v)) // 100 * 100 + 99 if kind.scaled and v else base
                sku = f"{kind.name[:3].upper()}-{pid % 100_000:05d}-{v + 1}"
                variants.append((next(variant_ids), pid, self.shop, kind.options[v], sku, price))
        with self.store.tx() as conn:
            conn.executemany("INSERT INTO products (id, shop, title, handle, product_type, vendor, tags, status, "
                             "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", products)
            conn.executemany("INSERT INTO variants (id, product_id, shop, title, sku, price_cents) "
                             "VALUES (?, ?, ?, ?, ?, ?)", variants)
        self.report.products, self.report.variants = len(products), len(variants)

    def _load_catalog(self) -> None:
        rows = self.store.conn().execute(
            "SELECT p.id AS pid, v.id AS vid, p.title, p.vendor, p.product_type, v.sku, v.price_cents "
            "FROM variants v JOIN products p ON p.id = v.product_id WHERE p.shop = ? AND p.status = 'active' "
            "ORDER BY v.price_cents, v.id", (self.shop,)).fetchall()
        if not rows:
            raise ValueError(f"shop {self.shop} has no active products to sell")
        by_price: list[Variant] = []
        for row in rows:
            line = json.dumps({"product_id": row["pid"], "variant_id": row["vid"], "title": row["title"],
                               "price_cents": row["price_cents"], "quantity": 0})
            by_price.append((row["pid"], row["vid"], row["title"], row["vendor"], row["product_type"], row["sku"],
                             row["price_cents"], line[:-2]))   # cut the placeholder quantity and brace
        by_type: dict[str, list[Variant]] = {}
        for variant in by_price:
            by_type.setdefault(variant[4], []).append(variant)
        self.type_names = sorted(by_type)
        consumable = {t.name for t in PRODUCT_TYPES if t.consumable}
        self.consumables = [name for name in self.type_names if name in consumable] or self.type_names
        self.plans = {p.name: _Plan(p, by_price, by_type) for p in PERSONA_DEFS}
        self.persona_pick = _cumulative([p.share for p in PERSONA_DEFS])
        self.cheap = [v for v in by_price if v[V_PRICE] < 4000] or by_price[:1]
        self.dear = [v for v in by_price if v[V_PRICE] >= 6000] or by_price[-1:]

    # -- batches -------------------------------------------------------------------------------
    def run_batch(self, size: int) -> None:
        batch = _Batch()
        for cid in self.store.next_ids("Customer", size):
            self._customer(cid, batch)
        self._write(batch)

    def _write(self, batch: _Batch) -> None:
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
    def _customer(self, cid: int, batch: _Batch) -> None:
        r = self.r
        plan = self.plans[PERSONAS[_pick(self.persona_pick, r())]]
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

    def _buyer(self, cid: int | None, email: str, plan: _Plan) -> _Buyer:
        r = self.r
        buyer = _Buyer(cid, email, plan)
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

    def _order_times(self, plan: _Plan, count: int) -> list[int]:
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

    def _checkout_times(self, plan: _Plan, count: int, order_times: list[int]) -> list[int]:
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

    # -- orders --------------------------------------------------------------------------------
    def _lines(self, buyer: _Buyer, count: int) -> list[tuple[Variant, int]]:
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

    def _order(self, buyer: _Buyer, t: int, batch: _Batch) -> None:
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

        device = _pick(plan.devices, r())
        if device == 3:   # in-store sale on the POS: no browser, no shipping
            source, device_name, ua, ip = "pos", "pos", None, None
            ship_code = ship_title = None
            shipping = 0
        else:
            device_name = _DEVICES[device]
            source, ua, ip = "web", buyer.uas[device], buyer.ip
            if device == 1 and r() < plan.persona.app:
                source, ua = buyer.app_source
            ship_code, ship_title, shipping = SHIPPING[_pick(plan.shipping, r())]
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

    def _guest_order(self, customer: _Buyer, span: tuple[int, int], batch: _Batch) -> None:
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

    def _abandoned_checkout(self, buyer: _Buyer, t: int, batch: _Batch) -> None:
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
        device = _pick(buyer.plan.devices, r())
        token, cart_token = "%032x" % self.rng.getrandbits(128), "%032x" % self.rng.getrandbits(128)
        line_json = _line_json(lines)
        created, updated = self.iso(t), self.iso(t + 60 + int(r() * 900))
        batch.carts.append((self.shop, cart_token, self.iso(t - 120 - int(r() * 1800)), created, subtotal,
                            line_json))
        batch.checkouts.append((self.shop, token, cart_token, buyer.cid, buyer.email, created, updated, None,
                                self.currency, subtotal, total, _DEVICES[device if device < 3 else 0], line_json))


_DEVICES = ("desktop", "mobile", "tablet", "pos")

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


def _line_json(lines: list[tuple[Variant, int]]) -> str:
    return "[" + ", ".join(f"{variant[V_JSON]}{qty}}}" for variant, qty in lines) + "]"


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


def _iso_date(day: dt.date) -> str:
    return day.isoformat() + "T00:00:00Z"
