"""devstore's online store: the pages a shopper browses (home, product, collection, search, cart,
checkout, login), with the shop's app pixels running the way Shopify runs them.

Each web pixel an app activated on the shop (the `web_pixels` table) runs in its own Web Worker, the
strict sandbox (static/pixel-sandbox.js): no DOM, only `shopify.extend` and the extension API
(`analytics`, `init`, `settings`, `customerPrivacy`, `browser`). The pages publish Shopify's standard
events with its documented payload shapes (static/storefront.js), and a theme's own with
`Shopify.analytics.publish`. As on a store in a region that asks for consent, pixels load only once
the shopper accepts analytics (the banner), and get the events from before replayed.

A collection is a product type (devstore has no collections); login is a cookie naming a customer.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import unquote

from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from shopseg.shopify.app_config import PROXY_PREFIXES, app_config_load

from .app_proxy import proxy_forward
from .discount_checkout import DiscountRefused, checkout_order_place
from .state import DevStore
from .theme import ASSET_BASE, EXTENSION
from .theme_editor import page_parts

STATIC = Path(__file__).parent / "static"
# The extensions' bundles, built by their own build step (the Makefile's `install`); devstore serves
# an app's pixel from here, as Shopify serves the bundle `shopify app deploy` uploaded.
PIXEL_BUNDLE = Path(__file__).resolve().parent.parent / "extensions" / "shopseg-pixel" / "dist" / "shopseg-pixel.js"
CUSTOMER_COOKIE = "devstore_customer"
CART_COOKIE = "cart"           # [[variant id, quantity], …], written by storefront.js
PROXY_PREFIXES_RULE = ", ".join(f'"{p}"' for p in PROXY_PREFIXES)


def rules(shop: str) -> list[Rule]:
    base = f"/shops/{shop}/store"
    return [
        Rule(f"{base}/", endpoint="store_home", methods=["GET"]),
        Rule(f"{base}/products/<int:product_id>", endpoint="store_product", methods=["GET"]),
        Rule(f"{base}/collections/<collection>", endpoint="store_collection", methods=["GET"]),
        Rule(f"{base}/search", endpoint="store_search", methods=["GET"]),
        Rule(f"{base}/cart", endpoint="store_cart", methods=["GET"]),
        Rule(f"{base}/checkout", endpoint="store_checkout", methods=["GET"]),
        Rule(f"{base}/checkout/complete", endpoint="store_checkout_complete", methods=["POST"]),
        Rule(f"{base}/account/login", endpoint="store_login", methods=["GET"]),
        Rule(f"{base}/account/logout", endpoint="store_logout", methods=["GET"]),
        Rule(f"{base}/<any({PROXY_PREFIXES_RULE}):prefix>/<subpath>/<path:rest>", endpoint="store_app_proxy",
             methods=["GET", "POST"]),
        Rule("/cdn/pixel-sandbox.js", endpoint="store_asset", defaults={"name": "pixel-sandbox.js"}),
        Rule("/cdn/storefront.js", endpoint="store_asset", defaults={"name": "storefront.js"}),
        Rule("/cdn/pixels/<api_key>.js", endpoint="store_pixel_bundle", methods=["GET"]),
        Rule(f"{ASSET_BASE}<name>", endpoint="store_theme_asset", methods=["GET"]),
    ]


def collection_handle(product_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", product_type.lower()).strip("-") or "all"


def _variant(row, shop: str, base: str, currency: str) -> dict[str, Any]:
    """A ProductVariant as the web pixel API shapes it (MoneyV2.amount is a number there)."""
    return {"id": str(row["variant_id"]), "image": None, "sku": row["sku"] or None, "title": row["variant_title"],
            "untranslatedTitle": row["variant_title"],
            "price": {"amount": row["price_cents"] / 100, "currencyCode": currency},
            "product": {"id": str(row["product_id"]), "title": row["title"], "type": row["product_type"],
                        "untranslatedTitle": row["title"], "url": f"{base}/products/{row['product_id']}",
                        "vendor": row["vendor"]}}


class Storefront:
    """The storefront's request handlers (devstore.server routes `store_*` endpoints here)."""

    def __init__(self, store: DevStore):
        self.store = store

    # -- data -----------------------------------------------------------------------------------
    def _shop(self, shop: str):
        row = self.store.conn().execute("SELECT domain, name, currency FROM shops WHERE domain = ?", (shop,)).fetchone()
        if row is None:
            raise NotFound("No such shop")
        return row

    def _variants(self, shop: str, where: str = "", params: tuple = (), limit: int = 24) -> list:
        return self.store.conn().execute(
            "SELECT p.id AS product_id, p.title, p.product_type, p.vendor, v.id AS variant_id, v.sku, v.price_cents, "
            "v.title AS variant_title FROM products p JOIN variants v ON v.id = (SELECT min(id) FROM variants "
            f"WHERE product_id = p.id) WHERE p.shop = ? AND p.status = 'active' {where} ORDER BY p.id LIMIT ?",
            (shop, *params, limit)).fetchall()

    def _customer(self, request: Request, shop: str):
        raw = request.cookies.get(CUSTOMER_COOKIE, "")
        if not raw.isdigit():
            return None
        return self.store.conn().execute("SELECT id, email, first_name, last_name, tags FROM customers "
                                         "WHERE shop = ? AND id = ?", (shop, int(raw))).fetchone()

    def _pixels(self, shop: str) -> list[dict[str, Any]]:
        rows = self.store.conn().execute("SELECT api_key, settings FROM web_pixels WHERE shop = ? ORDER BY id",
                                         (shop,)).fetchall()
        return [{"apiKey": r["api_key"], "settings": json.loads(r["settings"]),
                 "bundle": f"/cdn/pixels/{r['api_key']}.js"} for r in rows]

    def _cart(self, request: Request, shop: str) -> dict[str, Any]:
        """Liquid's `cart`: the browser's cart (its `cart` cookie, as Shopify keys carts), priced from the store."""
        try:
            lines = {int(v): int(q) for v, q in json.loads(unquote(request.cookies.get(CART_COOKIE, "[]")))[:50]}
        except (ValueError, TypeError):
            lines = {}
        rows = self.store.conn().execute(
            f"SELECT v.id, v.price_cents FROM variants v JOIN products p ON p.id = v.product_id WHERE p.shop = ? "
            f"AND v.id IN ({','.join('?' * len(lines)) or 'NULL'})", (shop, *lines)).fetchall()
        return {"total_price": sum(r["price_cents"] * max(0, lines[r["id"]]) for r in rows),
                "item_count": sum(max(0, lines[r["id"]]) for r in rows)}

    # -- pages ----------------------------------------------------------------------------------
    def _collections(self, shop: str) -> dict[str, dict[str, Any]]:
        """Each collection (a product type, and `all`) as Liquid's `collection`, for the theme's blocks."""
        collections: dict[str, dict[str, Any]] = {}
        for r in self._variants(shop, limit=200):
            product = {"title": r["title"], "url": f"/shops/{shop}/store/products/{r['product_id']}",
                       "price": r["price_cents"], "featured_image": None}
            for handle, title in ((collection_handle(r["product_type"]), r["product_type"]), ("all", "Products")):
                collections.setdefault(handle, {"title": title, "handle": handle, "products": [],
                                                "url": f"/shops/{shop}/store/collections/{handle}"})
                collections[handle]["products"].append(product)
        return collections

    def page(self, request: Request, shop: str, *, title: str, body: str, event: dict | None = None,
             template: str = "page") -> Response:
        row = self._shop(shop)
        customer = self._customer(request, shop)
        liquid_customer = None if customer is None else {
            "id": customer["id"], "email": customer["email"], "first_name": customer["first_name"],
            "tags": json.loads(customer["tags"] or "[]")}
        head, blocks, embed = page_parts(self.store, shop, template, customer=liquid_customer,
                                         collections=lambda: self._collections(shop), cart=self._cart(request, shop))
        boot = {"shop": {"myshopifyDomain": shop, "name": row["name"], "countryCode": "US",
                         "paymentSettings": {"currencyCode": row["currency"]},
                         "storefrontUrl": f"{request.host_url.rstrip('/')}/shops/{shop}/store"},
                "customer": None if customer is None else {
                    "id": str(customer["id"]), "email": customer["email"], "firstName": customer["first_name"],
                    "lastName": customer["last_name"], "ordersCount": None, "phone": None},
                "pixels": self._pixels(shop), "event": event, "base": f"/shops/{shop}/store"}
        who = (f'Signed in as {html.escape(customer["first_name"] or customer["email"])} · '
               f'<a href="/shops/{shop}/store/account/logout">Sign out</a>') if customer else "Guest"
        page = Template((STATIC / "storefront.html").read_text()).substitute(
            title=html.escape(title), shop_name=html.escape(row["name"] or shop), base=f"/shops/{shop}/store",
            who=who, body=blocks + body, boot=html.escape(json.dumps(boot), quote=False), head=head, embed=embed)
        return Response(page, mimetype="text/html")

    def _grid(self, rows, base: str) -> str:
        cards = "".join(
            f'<li class="card"><a href="{base}/products/{r["product_id"]}">{html.escape(r["title"])}</a>'
            f'<span class="price">${r["price_cents"] / 100:,.2f}</span>'
            f'<span class="meta">{html.escape(r["vendor"])} · {html.escape(r["product_type"])}</span></li>'
            for r in rows)
        return f'<ul class="grid">{cards}</ul>' if cards else '<p class="empty">Nothing here.</p>'

    def home(self, request: Request, shop: str) -> Response:
        base = f"/shops/{shop}/store"
        types = [r[0] for r in self.store.conn().execute(
            "SELECT DISTINCT product_type FROM products WHERE shop = ? AND status = 'active' ORDER BY 1", (shop,))]
        nav = "".join(f'<a class="chip" href="{base}/collections/{collection_handle(t)}">{html.escape(t)}</a>'
                      for t in types)
        return self.page(request, shop, title="Home", body=f'<nav class="chips">{nav}</nav>'
                         f'{self._grid(self._variants(shop, limit=12), base)}', template="index")

    def product(self, request: Request, shop: str, product_id: int) -> Response:
        rows = self._variants(shop, "AND p.id = ?", (product_id,), limit=1)
        if not rows:
            raise NotFound("No such product")
        row, currency = rows[0], self._shop(shop)["currency"]
        variant = _variant(row, shop, f"/shops/{shop}/store", currency)
        body = (f'<article class="product"><h1>{html.escape(row["title"])}</h1>'
                f'<p class="meta">{html.escape(row["vendor"])} · {html.escape(row["product_type"])}</p>'
                f'<p class="price">${row["price_cents"] / 100:,.2f}</p>'
                f'<button id="add-to-cart" type="button">Add to cart</button> '
                f'<a href="/shops/{shop}/store/cart">View cart</a></article>')
        return self.page(request, shop, title=row["title"], body=body, template="product",
                         event={"name": "product_viewed", "data": {"productVariant": variant}})

    def collection(self, request: Request, shop: str, collection: str) -> Response:
        types = [r[0] for r in self.store.conn().execute("SELECT DISTINCT product_type FROM products WHERE shop = ?",
                                                         (shop,)) if collection_handle(r[0]) == collection]
        if collection == "all":    # every shop's built-in collection of all products
            types = ["Products"]
        if not types:
            raise NotFound("No such collection")
        base, currency = f"/shops/{shop}/store", self._shop(shop)["currency"]
        rows = (self._variants(shop) if collection == "all"
                else self._variants(shop, "AND p.product_type = ?", (types[0],)))
        event = {"name": "collection_viewed", "data": {"collection": {
            "id": collection, "title": types[0], "productVariants": [_variant(r, shop, base, currency) for r in rows]}}}
        body = f"<h1>{html.escape(types[0])}</h1>{self._grid(rows, base)}"
        return self.page(request, shop, title=types[0], body=body, event=event, template="collection")

    def search(self, request: Request, shop: str) -> Response:
        query = request.args.get("q", "").strip()[:100]
        base, currency = f"/shops/{shop}/store", self._shop(shop)["currency"]
        like = f"%{query.lower()}%"
        rows = self._variants(shop, "AND (lower(p.title) LIKE ? OR lower(p.product_type) LIKE ?)", (like, like)) \
            if query else []
        event = {"name": "search_submitted", "data": {"searchResult": {
            "query": query, "productVariants": [_variant(r, shop, base, currency) for r in rows]}}} if query else None
        form = (f'<form class="search" action="{base}/search"><input name="q" value="{html.escape(query)}" '
                f'aria-label="Search"><button>Search</button></form>')
        body = form + (f'<h1>{len(rows)} result{"s" if len(rows) != 1 else ""} for “{html.escape(query)}”</h1>'
                       f'{self._grid(rows, base)}' if query else "")
        return self.page(request, shop, title="Search", body=body, event=event, template="search")

    def cart(self, request: Request, shop: str) -> Response:
        return self.page(request, shop, title="Cart", body='<h1>Your cart</h1><div id="cart-lines"></div>'
                         f'<a class="button" id="to-checkout" href="/shops/{shop}/store/checkout">Check out</a>',
                         event={"name": "cart_viewed"}, template="cart")

    def checkout(self, request: Request, shop: str) -> Response:
        return self.page(request, shop, title="Checkout", body='<h1>Checkout</h1><div id="cart-lines"></div>'
                         '<label>Discount code <input id="discount-code" autocomplete="off"></label> '
                         '<button id="pay" type="button">Pay now</button><p id="checkout-error" hidden></p>'
                         '<p id="thanks" hidden>Thank you!</p>', event={"name": "checkout_started"})

    def checkout_complete(self, request: Request, shop: str) -> Response:
        """The shopper pays: a real order in the store (webhooks and all), for the page's checkout_completed.
        With a `discountCode` the order carries it, or, when it does not apply, 422 and no order."""
        self._shop(shop)
        body = request.get_json(silent=True) or {}
        lines = [{"variant_id": int(line["variantId"]), "quantity": max(1, int(line.get("quantity", 1)))}
                 for line in body.get("lines", [])[:20]]
        if not lines:
            return Response(json.dumps({"error": "the cart is empty"}), status=400, mimetype="application/json")
        customer = self._customer(request, shop)
        try:
            order_id, discount = checkout_order_place(
                self.store, shop, lines=lines, customer_id=customer["id"] if customer else None,
                email=None if customer else "guest@example.com", code=str(body.get("discountCode") or ""))
        except DiscountRefused as refused:
            return Response(json.dumps({"error": str(refused)}), status=422, mimetype="application/json")
        return Response(json.dumps({"orderId": str(order_id), "customerId": str(customer["id"]) if customer else None,
                                    "discount": discount.summary() if discount else None}),
                        mimetype="application/json")

    def login(self, request: Request, shop: str) -> Response:
        """Signing in as a customer of the shop (devstore has no passwords): `?customer=<id>`."""
        customer = request.args.get("customer", "")
        response = Response(status=302, headers={"Location": f"/shops/{shop}/store/"})
        if customer.isdigit():
            response.set_cookie(CUSTOMER_COOKIE, customer, path=f"/shops/{shop}/store", httponly=True, samesite="Lax")
        return response

    def logout(self, request: Request, shop: str) -> Response:
        response = Response(status=302, headers={"Location": f"/shops/{shop}/store/"})
        response.delete_cookie(CUSTOMER_COOKIE, path=f"/shops/{shop}/store")
        return response

    def asset(self, request: Request, name: str) -> Response:
        return Response((STATIC / name).read_text(), mimetype="application/javascript")

    def theme_asset(self, request: Request, name: str) -> Response:
        """The theme app extension's assets (Shopify serves them from its CDN)."""
        path = EXTENSION / "assets" / name
        if "/" in name or not path.is_file():
            raise NotFound("No such asset")
        mimetype = {".js": "application/javascript", ".css": "text/css"}.get(path.suffix, "application/octet-stream")
        return Response(path.read_bytes(), mimetype=mimetype)

    def pixel_bundle(self, request: Request, api_key: str) -> Response:
        if not PIXEL_BUNDLE.exists():
            raise NotFound("The pixel bundle is not built: `make install` builds it (extensions/shopseg-pixel)")
        return Response(PIXEL_BUNDLE.read_text(), mimetype="application/javascript")

    def app_proxy(self, request: Request, shop: str, prefix: str, subpath: str, rest: str) -> Response:
        """`/<prefix>/<subpath>/…` forwarded, signed, to the installed app whose app proxy it is (its
        configuration, shopify.app.toml's [app_proxy]), as Shopify forwards it; the logged-in customer
        is the storefront's."""
        self._shop(shop)
        proxy = app_config_load().app_proxy
        if proxy is None or (proxy.prefix, proxy.subpath) != (prefix, subpath):
            raise NotFound("No app proxy here")
        installed = [a for a in self.store.apps() if self.store.installation(shop, a["api_key"])]
        if not installed:
            raise NotFound("No app proxy here")
        customer = self._customer(request, shop)
        status, headers, body = proxy_forward(
            app_url=installed[0]["app_url"], proxy_url=proxy.url, rest=rest, query=request.query_string.decode(),
            shop=shop, customer_id=customer["id"] if customer else None, path_prefix=f"/{prefix}/{subpath}",
            secret=installed[0]["api_secret"], method=request.method, body=request.get_data(),
            content_type=request.content_type)
        return Response(body, status=status, headers=headers)
