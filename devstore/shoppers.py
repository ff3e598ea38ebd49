"""Browsing shoppers for a seeded shop: visits by personas, sent to the shop's app pixels as the
pixels would send them.

A browser running an app's pixel posts its events in batches to the pixel's `ingestUrl` with its
`ingestKey` (the settings the app activated the pixel with: the `web_pixels` table). This simulator
stands in for many such browsers at once, without Chromium: each visit is a persona's walk through
the store (pages, products, collections, searches, carts, checkouts), a pool of browser ids makes
visitors come back, some sign in as a customer of the shop, some arrive from a campaign link. The
events carry what the pixel keeps (extensions/shopseg-pixel/src/index.js) in the shapes the app
reads; the browser tests run the real bundle in Chromium.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from random import Random
from typing import Any

import httpx

from .state import DevStore, utcnow
from .storefront import collection_handle

PERSONAS: tuple[tuple[str, int], ...] = (
    ("browse_heavy", 30),      # many product and collection views, nothing in the cart
    ("high_intent", 20),       # a specific search, the product, into the cart, often bought
    ("window_shopper", 20),    # adds to the cart, never checks out
    ("campaign", 20),          # lands from an ad or email with UTM parameters
    ("bounce", 10),            # one page and gone
)
CAMPAIGNS = (("instagram", "paid_social", "winter_sale"), ("google", "cpc", "brand_search"),
             ("newsletter", "email", "weekly_picks"), ("tiktok", "paid_social", "new_arrivals"))
BATCH = 20
CLIENT_POOL = 400          # distinct browsers per shop: visitors return


class ShopperSimulator:
    def __init__(self, store: DevStore, shop: str, *, seed: int, http: httpx.Client | None = None):
        if store.shop(shop) is None:
            raise ValueError(f"no shop {shop}")
        self._store, self._shop, self._rng = store, shop, Random(seed)
        self._http = http or httpx.Client(timeout=10)
        self._base = f"https://{shop}"
        conn = store.conn()
        self._products = [dict(r) for r in conn.execute(
            "SELECT p.id, p.title, p.product_type, p.vendor, v.id AS variant_id, v.price_cents FROM products p "
            "JOIN variants v ON v.id = (SELECT min(id) FROM variants WHERE product_id = p.id) "
            "WHERE p.shop = ? AND p.status = 'active'", (shop,))]
        self._customers = [r[0] for r in conn.execute("SELECT id FROM customers WHERE shop = ? ORDER BY id LIMIT 500",
                                                      (shop,))]

    def pixels(self) -> list[dict[str, str]]:
        return [json.loads(r[0]) for r in self._store.conn().execute(
            "SELECT settings FROM web_pixels WHERE shop = ? ORDER BY id", (self._shop,))]

    def run(self, visits: int) -> dict[str, int]:
        """`visits` visits, each sent to every pixel of the shop; how many of each persona, and batches
        the app refused (it should refuse none)."""
        counts: Counter[str] = Counter()
        pixels = self.pixels()
        for _ in range(visits if self._products else 0):     # a shop not seeded yet has nothing to browse
            persona, events = self.visit()
            counts[persona] += 1
            for pixel in pixels:
                counts["refused"] += self._send(pixel, events)
        counts["pixels"] = len(pixels)
        return dict(counts)

    def visit(self, now: dt.datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
        rng = self._rng
        persona = rng.choices([p for p, _ in PERSONAS], [w for _, w in PERSONAS])[0]
        browser = rng.randrange(CLIENT_POOL)
        client = f"devstore-{browser}-{self._shop.split('.')[0]}"
        # A third of the browsers belong to a customer of the shop, who is signed in on most visits.
        known = self._customers and browser % 3 == 0 and rng.random() < 0.8
        customer = str(self._customers[browser % len(self._customers)]) if known else None
        steps = self._steps(persona)
        end = now or utcnow()
        start = end - dt.timedelta(seconds=20 * len(steps))
        events = []
        for seq, (name, path, data) in enumerate(steps):
            moment = start + dt.timedelta(seconds=20 * seq + rng.randrange(15))
            events.append({"id": f"sh-{uuid.UUID(int=rng.getrandbits(128))}", "name": name, "clientId": client,
                           "timestamp": moment.isoformat(), "seq": seq, "url": self._base + path,
                           "referrer": "", "customerId": customer, "data": data})
        return persona, events

    # -- a persona's walk --------------------------------------------------------------------------
    def _steps(self, persona: str) -> list[tuple[str, str, dict]]:
        rng = self._rng
        landing = "/"
        if persona == "campaign":
            source, medium, campaign = rng.choice(CAMPAIGNS)
            landing = f"/?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
        steps = [("page_viewed", landing, {})]
        if persona == "bounce":
            return steps
        product = rng.choice(self._products)
        if persona in ("browse_heavy", "campaign"):
            for _ in range(rng.randint(3, 9) if persona == "browse_heavy" else rng.randint(1, 3)):
                product = rng.choice(self._products)
                if rng.random() < 0.4:
                    steps.append(self._collection(product))
                steps.append(self._product(product))
        if persona == "high_intent":
            steps.append(("search_submitted", f"/search?q={product['title'].split()[-1].lower()}",
                          {"query": product["title"].split()[-1].lower(), "results": rng.randint(1, 6)}))
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
