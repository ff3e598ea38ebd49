"""The shop-wide half of the store generator: its clock (the history's days, seasonal weights,
holiday windows and ISO times) and its catalog (created once per shop, then loaded as price-sorted
variants and per-persona plans), with the weighted-draw helpers both use. `generator._Generator`
mixes in `CalendarMixin` and `CatalogMixin`; they read and set that class's attributes (the random
stream, the store, the report), so they are not meant to be used on their own.
"""
from __future__ import annotations

import datetime as dt
import json
from bisect import bisect_right
from collections.abc import Sequence

from .inventory import cost_stream, items_insert, unit_cost
from .personas import (
    ADJECTIVES, HOLIDAY_LIFT, HOUR_WEIGHT, MONTH_WEIGHT, PERSONA_DEFS, PRODUCT_TYPES, Persona, holiday_windows,
)

DAY = 86_400
PRE_DAYS = 60          # accounts may be opened up to this long before the history window starts
PRODUCTS = 200

# A variant as the generator uses it: (product_id, variant_id, title, vendor, product_type, sku,
# price_cents, JSON of a checkout/cart line up to its quantity value).
Variant = tuple[int, int, str, str, str, str, int, str]
V_PRICE, V_JSON = 6, 7


class Plan:
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


def pick(cumulative: tuple[float, ...], u: float) -> int:
    for index, bound in enumerate(cumulative):
        if u < bound:
            return index
    return len(cumulative) - 1


def _table(weights: Sequence[float], values: Sequence, size: int = 100) -> tuple:
    """A lookup table where `values` appear in proportion to `weights`: one random index per draw."""
    cumulative = _cumulative(weights)
    return tuple(values[pick(cumulative, (i + 0.5) / size)] for i in range(size))


def _tier(variants: list[Variant], tier: tuple[float, float]) -> list[Variant]:
    """The price band `tier` (quantiles) of a price-sorted variant list; never empty."""
    lo = int(tier[0] * len(variants))
    hi = max(lo + 1, int(round(tier[1] * len(variants))))
    return variants[lo:hi] or variants[-1:]


class CalendarMixin:
    """Day-indexed lookups over the history window and the times drawn from them."""

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


class CatalogMixin:
    """The shop's products and variants, and the per-persona slices of them buyers draw from."""

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
        created_of_variant: list[str] = []
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
                created_of_variant.append(created)
        # Each variant's inventory item, with its unit cost drawn from a stream of its own (so the
        # catalog, customers and orders of a seed are what they were before devstore kept costs).
        costs = cost_stream(self.seed)
        items = [(item_id, variant[0], unit_cost(costs, variant[5]), created) for item_id, variant, created
                 in zip(self.store.next_ids("InventoryItem", len(variants)), variants, created_of_variant)]
        with self.store.tx() as conn:
            conn.executemany("INSERT INTO products (id, shop, title, handle, product_type, vendor, tags, status, "
                             "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", products)
            conn.executemany("INSERT INTO variants (id, product_id, shop, title, sku, price_cents) "
                             "VALUES (?, ?, ?, ?, ?, ?)", variants)
            items_insert(conn, self.shop, items)
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
        self.plans = {p.name: Plan(p, by_price, by_type) for p in PERSONA_DEFS}
        self.persona_pick = _cumulative([p.share for p in PERSONA_DEFS])
        self.cheap = [v for v in by_price if v[V_PRICE] < 4000] or by_price[:1]
        self.dear = [v for v in by_price if v[V_PRICE] >= 6000] or by_price[-1:]


def _iso_date(day: dt.date) -> str:
    return day.isoformat() + "T00:00:00Z"
