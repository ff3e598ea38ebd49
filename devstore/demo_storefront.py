"""The demo's storefront steps (devstore/management/commands/demo.py): shoppers browse with the real
web pixel, then the merchant places the theme app extension's blocks and a VIP, a shopper who is not
one and an anonymous new visitor each get their own home page."""
from __future__ import annotations

import json
import sqlite3
import time
from urllib.parse import quote

import httpx

# The VIP hero shows new arrivals to VIPs instead of the discount banner everyone else sees.
DEMO_HERO = {"member_heading": "New arrivals, first for our VIPs",
             "member_text": "<p>The winter collection is in: yours to see before anyone else.</p>",
             "default_heading": "Winter sale: 20% off",
             "default_text": "<p>Everything in the winter collection, this week only.</p>"}
DEMO_WELCOME = {"member_heading": "First time here?", "member_text": "<p>Start with our bestsellers.</p>",
                "default_heading": "Welcome back", "default_text": "<p>Here is what is new since your last visit.</p>"}


# The cart abandoners' experience: free shipping on a cart of $100 or more, 10% off a smaller one.
DEMO_CART_OFFER = {"preset": "cart_value", "threshold": 100, "percent": 10}
# Checkout abandoners first; in a small store none may carry a tag yet, and window shoppers (carts never
# checked out) are the same shoppers one step earlier.
CART_SEGMENTS = ("low-value-cart-abandoners", "high-value-cart-abandoners", "window-shoppers")


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

    def _offers(self, devstore_url: str, app_url: str, shop: str, env: dict[str, str]) -> str | None:
        """In the admin, the merchant picks "Cart abandoners by cart value" in a cart abandoners segment's
        playbook (the admin's own API, with a session token); the worker writes its two discount codes,
        limited to a native segment mirroring the tag. Returns the segment's tag (None without one)."""
        with sqlite3.connect(self.state / "devstore.db") as db:     # the segment with a tagged customer
            handle = next((h for h in CART_SEGMENTS if db.execute(
                "SELECT 1 FROM customers WHERE shop = ? AND tags LIKE ?", (shop, f'%"seg:{h}"%')).fetchone()), None)
        if handle is None:
            self._say("   no cart abandoner carries a tag yet: the cart offer is left out")
            return None
        with httpx.Client(timeout=30) as http:
            token = http.get(f"{devstore_url}/_control/shops/{shop}/session-token/{env['SHOPIFY_API_KEY']}").json()
            auth = {"Authorization": f"Bearer {token['token']}"}
            segments = http.get(f"{app_url}/api/segments", headers=auth).json()["segments"]
            segment = next(s for s in segments if s["handle"] == handle)
            http.put(f"{app_url}/api/segments/{segment['id']}/playbook", headers=auth,
                     json={"experience": DEMO_CART_OFFER}).raise_for_status()
            deadline, codes = time.monotonic() + 60, []
            while len(codes) < 2 and time.monotonic() < deadline:     # the worker's beat writes them
                time.sleep(0.5)
                codes = [c for d in http.get(f"{devstore_url}/_control/shops/{shop}/discounts").json()["discounts"]
                         for c in d["codes"]]
        self._say(f"   in the admin, the playbook of {segment['name']} picks \"Cart abandoners by cart value\" (free "
                  f"shipping from $100, else 10% off); the worker wrote {len(codes)} discount codes limited to the "
                  f"segment's members in Shopify: {', '.join(sorted(codes))}")
        return f"seg:{handle}"

    def _cart_offer(self, devstore_url: str, shop: str, tag: str) -> None:
        """A cart abandoner sees the offer for their cart's value and redeems it; a non-member cannot."""
        store = f"{devstore_url}/shops/{shop}/store"
        with sqlite3.connect(self.state / "devstore.db") as db:
            member, other = (db.execute(f"SELECT id FROM customers WHERE shop = ? AND tags {op} ? ORDER BY id LIMIT 1",
                                        (shop, f'%"{tag}"%')).fetchone()[0] for op in ("LIKE", "NOT LIKE"))
            variant, price = db.execute("SELECT v.id, v.price_cents FROM variants v JOIN products p ON p.id = "
                                        "v.product_id WHERE p.shop = ? ORDER BY v.price_cents DESC LIMIT 1",
                                        (shop,)).fetchone()
        quantity = -(-10_000 // price)        # enough for a $100 cart
        with httpx.Client(timeout=30) as http:
            for cart, label in (([], "an empty cart"), ([[variant, quantity]], f"a ${price * quantity / 100:,.2f} cart")):
                page = http.get(f"{store}/", cookies={"devstore_customer": str(member), "cart": quote(json.dumps(cart))}).text
                offer = page.split('class="shopseg-offer__heading">', 1)[-1].split("<", 1)[0] if "shopseg-offer" in page else "nothing"
                self._say(f"   a cart abandoner ({member}) with {label} sees: {offer}")
            code = f"{tag.split(':', 1)[1].upper()}-FREESHIP"
            lines = {"lines": [{"variantId": variant, "quantity": quantity}], "discountCode": code}
            paid = http.post(f"{store}/checkout/complete", json=lines, cookies={"devstore_customer": str(member)})
            refused = http.post(f"{store}/checkout/complete", json=lines, cookies={"devstore_customer": str(other)})
        self._say(f"   they pay with {code}: order {paid.json().get('orderId')} ships free; customer {other}, not in "
                  f"the segment, is refused: {refused.json().get('error')}")

    def _theme(self, devstore_url: str, shop: str, env: dict[str, str], cart_tag: str | None = None) -> None:
        """The merchant places the theme app extension's blocks and turns its embed on; a VIP, a shopper
        who is not one and an anonymous new visitor each get their own home page."""
        store = f"{devstore_url}/shops/{shop}/store"
        cart = [{"block": "segment-experience", "settings": {"segment": cart_tag}}] if cart_tag else []
        theme = {"embed": {"enabled": True, "settings": {"proxy_path": f"/shops/{shop}/store/apps/shopseg"}},
                 "templates": {"index": [
                     {"block": "segment-banner", "settings": {**DEMO_HERO, "segments": "seg:vip"}},
                     {"block": "segment-content", "settings": {**DEMO_WELCOME, "segments": "seg:new-visitors"}},
                     *cart]}}
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
        if cart_tag:
            self._cart_offer(devstore_url, shop, cart_tag)
        self._say(f"   see it as the VIP: {store}/account/login?customer={vip[0] if vip else ''} "
                  "(sign out to see what everyone else sees)")
