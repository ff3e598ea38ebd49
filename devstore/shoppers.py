"""Browsing shoppers for a seeded shop: browsers with personas, whose visits are sent to the shop's app
pixels as the pixels would send them.

A browser running an app's pixel posts its events in batches to the pixel's `ingestUrl` with its
`ingestKey` (the settings the app activated the pixel with: the `web_pixels` table). This simulator
stands in for many such browsers at once, without Chromium. Each browser of the shop's pool has a
persona for good (its ground truth, `Browser`), first came some days ago, and belongs to a customer
of the shop some of the time (signed in on most visits); a visit is its persona's walk through the
store (pages, products, collections, searches, carts, checkouts). The events carry what the pixel
keeps (extensions/shopseg-pixel/src/index.js) in the shapes the app reads; the browser tests run the
real bundle in Chromium.

`run` sends visits happening now (the live store); `history` makes the visits of the last days,
day by day, for a caller that knows how late the app takes them (the demo sends the last two days;
the template tests take a month through the app's own ingest at each visit's time).
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from random import Random
from typing import Any

import httpx

from .state import DevStore, utcnow
from .storefront import collection_handle

# (persona, weight, visits a week): what each browser does every time it comes back.
PERSONAS: tuple[tuple[str, int, float], ...] = (
    ("browse_heavy", 20, 2.5),      # many product views, nothing in the cart
    ("high_intent", 15, 1.0),       # a specific search, or search, product, cart; often to checkout
    ("window_shopper", 15, 1.5),    # views and adds to the cart, never checks out
    ("category_browser", 15, 2.0),  # walks the collections of one category
    ("campaign", 15, 1.0),          # lands from its ad or email campaign's links (UTM parameters)
    ("bounce", 20, 0.5),            # one page and gone
)
CAMPAIGNS = (("instagram", "paid_social", "winter_sale"), ("google", "cpc", "brand_search"),
             ("newsletter", "email", "weekly_picks"), ("tiktok", "paid_social", "new_arrivals"))
NEWSLETTER = CAMPAIGNS[2]
NEWSLETTER_SHARE = 0.1          # of anyone's visits: they came from the weekly email
NEW_SHARE = 0.2                 # of browsers: first came in the last week
BATCH = 20
CLIENT_POOL = 400               # distinct browsers per shop: visitors return
CUSTOMER_SHARE = 1 / 3          # of browsers: a customer's, signed in on most visits
SIGNED_IN = 0.8
STEP_SECONDS = 20


@dataclass(frozen=True)
class Browser:
    """One browser of the pool, its persona for good: the ground truth the segments are held to."""

    client_id: str
    persona: str
    customer_id: int | None       # the devstore customer whose browser it is
    first_days_ago: float         # when it first came, before the history's end
    campaign: tuple[str, str, str]    # the campaign whose links it arrives by (the campaign persona)
    favourite: int                # which product's category a category browser walks


class ShopperSimulator:
    def __init__(self, store: DevStore, shop: str, *, seed: int, http: httpx.Client | None = None,
                 browsers: int = CLIENT_POOL, customer_share: float = CUSTOMER_SHARE):
        if store.shop(shop) is None:
            raise ValueError(f"no shop {shop}")
        self._store, self._shop, self._rng = store, shop, Random(seed)
        self._http = http or httpx.Client(timeout=10)
        self._base = f"https://{shop}"
        conn = store.conn()
        self._products = [dict(r) for r in conn.execute(
            "SELECT p.id, p.title, p.product_type, p.vendor, v.id AS variant_id, v.price_cents FROM products p "
            "JOIN variants v ON v.id = (SELECT min(id) FROM variants WHERE product_id = p.id) "
            "WHERE p.shop = ? AND p.status = 'active' ORDER BY p.id", (shop,))]
        customers = [r[0] for r in conn.execute("SELECT id FROM customers WHERE shop = ? ORDER BY id", (shop,))]
        self.browsers = _pool(Random(f"{seed}-pool"), shop, browsers, customers, customer_share)

    def pixels(self) -> list[dict[str, str]]:
        return [json.loads(r[0]) for r in self._store.conn().execute(
            "SELECT settings FROM web_pixels WHERE shop = ? ORDER BY id", (self._shop,))]

    def run(self, visits: int = 0, *, days: int = 0) -> dict[str, int]:
        """`visits` visits happening now, plus the last `days` days' history, each sent to every pixel of
        the shop; how many visits of each persona, and batches the app refused (it should refuse none)."""
        counts: Counter[str] = Counter()
        pixels = self.pixels()
        planned = self.history(days=days) if days else []
        planned += [self.visit() for _ in range(visits)]
        for browser, events in planned if self._products else []:    # a shop not seeded has nothing to browse
            counts[browser.persona] += 1
            for pixel in pixels:
                counts["refused"] += self._send(pixel, events)
        counts["pixels"] = len(pixels)
        return dict(counts)

    def visit(self, now: dt.datetime | None = None) -> tuple[Browser, list[dict[str, Any]]]:
        """A visit of a browser of the pool, ending now."""
        browser = self._rng.choice(self.browsers)
        return browser, self._walk(browser, now or utcnow())

    def history(self, *, days: int, now: dt.datetime | None = None) -> list[tuple[Browser, list[dict[str, Any]]]]:
        """Every browser's visits over the `days` days before `now` (from its first visit on, at its
        persona's rate), oldest first."""
        end, rng, planned = now or utcnow(), self._rng, []
        rates = {persona: per_week for persona, _, per_week in PERSONAS}
        for browser in self.browsers:
            ago = min(browser.first_days_ago, days)
            while ago > 0:
                # The visit ends `ago` days before the end; the first is the browser's first ever.
                moment = end - dt.timedelta(days=ago)
                planned.append((moment, browser, self._walk(browser, moment)))
                ago -= rng.expovariate(rates[browser.persona] / 7)
        planned.sort(key=lambda p: p[0])
        return [(browser, events) for _, browser, events in planned]

    # -- a persona's walk --------------------------------------------------------------------------
    def _walk(self, browser: Browser, end: dt.datetime) -> list[dict[str, Any]]:
        rng = self._rng
        customer = str(browser.customer_id) if browser.customer_id and rng.random() < SIGNED_IN else None
        steps = self._steps(browser)
        start = end - dt.timedelta(seconds=STEP_SECONDS * len(steps))
        events = []
        for seq, (name, path, data) in enumerate(steps):
            moment = start + dt.timedelta(seconds=STEP_SECONDS * seq + rng.randrange(15))
            events.append({"id": f"sh-{uuid.UUID(int=rng.getrandbits(128))}", "name": name,
                           "clientId": browser.client_id, "timestamp": moment.isoformat(), "seq": seq,
                           "url": self._base + path, "referrer": "", "customerId": customer, "data": data})
        return events

    def _steps(self, browser: Browser) -> list[tuple[str, str, dict]]:
        rng, persona = self._rng, browser.persona
        landing = "/"
        campaign = browser.campaign if persona == "campaign" else (
            NEWSLETTER if rng.random() < NEWSLETTER_SHARE else None)
        if campaign:
            source, medium, name = campaign
            landing = f"/?utm_source={source}&utm_medium={medium}&utm_campaign={name}"
        steps = [("page_viewed", landing, {})]
        if persona == "bounce":
            return steps
        product = rng.choice(self._products)
        if persona in ("browse_heavy", "campaign"):
            for _ in range(rng.randint(5, 12) if persona == "browse_heavy" else rng.randint(1, 3)):
                product = rng.choice(self._products)
                if rng.random() < 0.05:
                    steps.append(self._collection(product))
                steps.append(self._product(product))
        if persona == "category_browser":
            # One category, the same on every visit: its collection page again and again, a product or two.
            favourite = self._products[browser.favourite % len(self._products)]
            for _ in range(rng.randint(3, 6)):
                steps.append(self._collection(favourite))
                if rng.random() < 0.3:
                    steps.append(self._product(rng.choice(self._products)))
        if persona == "high_intent":
            specific = rng.random() < 0.5           # the product's name in full, or one word of it
            query = product["title"].lower() if specific else product["title"].split()[-1].lower()
            steps.append(("search_submitted", f"/search?q={query.replace(' ', '+')}",
                          {"query": query, "results": rng.randint(1, 6)}))
            steps.append(self._product(product))
        if persona in ("high_intent", "window_shopper") or (persona == "campaign" and rng.random() < 0.3):
            if persona == "window_shopper":
                steps.append(self._product(product))
            steps.append(("product_added_to_cart", f"/products/{product['id']}", self._line(product)))
            steps.append(("cart_viewed", "/cart", {"amount": product["price_cents"] / 100, "quantity": 1}))
            if persona == "window_shopper" and rng.random() < 0.3:
                steps.append(("product_removed_from_cart", "/cart", self._line(product)))
        if persona == "high_intent" and rng.random() < 0.6:
            token = f"devstore-checkout-{rng.getrandbits(40):x}"
            steps.append(("checkout_started", "/checkout", {"token": token, "amount": product["price_cents"] / 100}))
        return steps

    def _product(self, product: dict) -> tuple[str, str, dict]:
        return ("product_viewed", f"/products/{product['id']}",
                {"productId": str(product["id"]), "variantId": str(product["variant_id"]),
                 "productType": product["product_type"], "vendor": product["vendor"],
                 "price": product["price_cents"] / 100})

    def _collection(self, product: dict) -> tuple[str, str, dict]:
        handle = collection_handle(product["product_type"])
        return ("collection_viewed", f"/collections/{handle}",
                {"collectionId": handle, "title": product["product_type"]})

    def _line(self, product: dict) -> dict:
        return {"productId": str(product["id"]), "variantId": str(product["variant_id"]),
                "productType": product["product_type"], "vendor": product["vendor"],
                "price": product["price_cents"] / 100, "quantity": 1, "amount": product["price_cents"] / 100}

    def _send(self, pixel: dict[str, str], events: list[dict]) -> int:
        refused = 0
        for start in range(0, len(events), BATCH):
            body = {"key": pixel["ingestKey"], "shop": self._shop, "analytics": True,
                    "events": events[start:start + BATCH]}
            try:
                answer = self._http.post(pixel["ingestUrl"], content=json.dumps(body),
                                         headers={"Content-Type": "text/plain"})
                refused += answer.status_code >= 400
            except httpx.HTTPError:
                refused += 1
        return refused


def _pool(rng: Random, shop: str, size: int, customers: list[int], customer_share: float) -> list[Browser]:
    """The shop's browsers: personas by weight, a share of them customers' (each customer one browser at
    most), a fifth of them new this week and the rest first seen up to two months ago."""
    owners = rng.sample(customers, min(len(customers), round(size * customer_share)))
    browsers = []
    for index in range(size):
        persona = rng.choices([p for p, _, _ in PERSONAS], [w for _, w, _ in PERSONAS])[0]
        first = rng.uniform(0.1, 7) if rng.random() < NEW_SHARE else rng.uniform(8, 60)
        browsers.append(Browser(client_id=f"devstore-{shop.split('.')[0]}-{index:x}", persona=persona,
                                customer_id=owners[index] if index < len(owners) else None,
                                first_days_ago=first, campaign=rng.choice(CAMPAIGNS),
                                favourite=rng.randrange(1 << 30)))
    return browsers
