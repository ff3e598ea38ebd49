"""The demo's storefront steps (devstore/management/commands/demo.py): shoppers browse with the real
web pixel, then the merchant places the theme app extension's blocks and a VIP, a shopper who is not
one and an anonymous new visitor each get their own home page."""
from __future__ import annotations

import json
import sqlite3

import httpx

# The VIP hero shows new arrivals to VIPs instead of the discount banner everyone else sees.
DEMO_HERO = {"member_heading": "New arrivals, first for our VIPs",
             "member_text": "<p>The winter collection is in: yours to see before anyone else.</p>",
             "default_heading": "Winter sale: 20% off",
             "default_text": "<p>Everything in the winter collection, this week only.</p>"}
DEMO_WELCOME = {"member_heading": "First time here?", "member_text": "<p>Start with our bestsellers.</p>",
                "default_heading": "Welcome back", "default_text": "<p>Here is what is new since your last visit.</p>"}


class StorefrontSteps:
    """Steps of the demo command (a mixin: it uses the command's _say, _app_command and _segments)."""

    def _storefront(self, devstore_url: str, shop: str, env: dict[str, str], *, seed: int) -> None:
        """Shoppers browse the storefront; the pixel's batches arrive and the worker rolls them up."""
        self._say("   the storefront: 400 browsers' last two days and 60 visits now (personas: browse-heavy, "
                  "high-intent, window shoppers, category browsers, campaign arrivals); the web pixel's batches "
                  "arrive and the worker rolls them up")
        visits = httpx.post(f"{devstore_url}/_control/shops/{shop}/shoppers",
                            json={"visits": 60, "days": 2, "seed": seed + 7}, timeout=600).json()["visits"]
        seen = json.loads(self._app_command(env, "storefront", "--shop", shop, "--wait", "120"))
        totals = seen["totals"]
        self._say(f"   {seen['events']:,} events from {seen['visitors']:,} browsers ({seen['joined']:,} joined to "
                  f"customers, {visits.get('refused', 0)} batches refused): {totals['product_views']:,} product views, "
                  f"{totals['searches']:,} searches, {totals['add_to_carts']:,} add-to-carts, "
                  f"{totals['checkouts_started']:,} checkouts started")
        for campaign in seen["campaigns"][:3]:
            self._say(f"   arrived from {campaign['utm_source']} / {campaign['utm_campaign']}: "
                      f"{campaign['visitors']:,} visitors")
        self._say("   the browsing segments fill up (members, and entries by trigger):")
        self._segments(shop, env, create=False, family="browsing")
        self._say(f"   browse it yourself: {devstore_url}/shops/{shop}/store/ (accept analytics: the real pixel runs)")

    def _theme(self, devstore_url: str, shop: str, env: dict[str, str]) -> None:
        """The merchant places the theme app extension's blocks and turns its embed on; a VIP, a shopper
        who is not one and an anonymous new visitor each get their own home page."""
        store = f"{devstore_url}/shops/{shop}/store"
        theme = {"embed": {"enabled": True, "settings": {"proxy_path": f"/shops/{shop}/store/apps/shopseg"}},
                 "templates": {"index": [
                     {"block": "segment-banner", "settings": {**DEMO_HERO, "segments": "seg:vip"}},
                     {"block": "segment-content", "settings": {**DEMO_WELCOME, "segments": "seg:new-visitors"}}]}}
        httpx.put(f"{devstore_url}/_control/shops/{shop}/theme", json=theme, timeout=30).raise_for_status()
        self._say("   the theme: the app embed turned on, a VIP hero and a new visitors' welcome placed on the home "
                  "page (devstore renders the theme app extension's Liquid)")
        with sqlite3.connect(self.state / "devstore.db") as db:     # devstore's own store: who has the tag
            vip, other = (db.execute(f"SELECT id FROM customers WHERE shop = ? AND tags {op} '%\"seg:vip\"%' "
                                     "ORDER BY id LIMIT 1", (shop,)).fetchone() for op in ("LIKE", "NOT LIKE"))
        with httpx.Client(timeout=30) as http:
            for who, row in (("a VIP signed in", vip), ("a customer who is not one", other)):
                if row:
                    page = http.get(f"{store}/", cookies={"devstore_customer": str(row[0])}).text
                    seen = [h for h in (DEMO_HERO["member_heading"], DEMO_HERO["default_heading"]) if h in page]
                    self._say(f"   {who} ({row[0]}) sees the hero: {' / '.join(seen)}")
            visitor = json.loads(self._app_command(env, "storefront", "--shop", shop, "--visitor-in",
                                                   "seg:new-visitors"))["visitor_in"]["client_id"]
            if visitor:
                answer = http.get(f"{store}/apps/shopseg/segments", params={"client_id": visitor}).json()
                self._say(f"   an anonymous new visitor asks the app proxy for its segments (signed by the store as "
                          f"Shopify signs it): {json.dumps(answer)}")
        self._say(f"   see it as the VIP: {store}/account/login?customer={vip[0] if vip else ''} "
                  "(sign out to see what everyone else sees)")
