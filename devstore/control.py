"""devstore's control API (`/_control/...`): what tests, the demo and benchmarks use to drive it.

Seed and reset shops, register the app, read a customer's tags as Shopify holds them, edit them
"by hand" (drift), inject faults, size a shop's rate-limit bucket and count its THROTTLED answers,
run live traffic, uninstall the app, send compliance requests, read the web pixels apps activated and
the native segments and code discounts they made, and set a variant's cost (control_catalog).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from . import compliance_mutations, control_catalog, mutation_base, mutations, oauth
from .bucket import plan_limits
from .customer_segments import segments_listing
from .discount_checkout import discounts_listing
from .flow import received as flow_received
from .state import parse_iso
from .theme_editor import ThemeInvalid, theme_get, theme_set
from .web_pixels import shop_pixels

if TYPE_CHECKING:
    from .server import DevstoreApp

# Tables holding a shop's data, cleared by reset (apps are global and survive).
SHOP_TABLES = ("installations", "oauth_codes", "tokens", "products", "variants", "inventory_items", "customers",
               "orders", "line_items", "refunds", "checkouts", "carts", "deleted_resources", "webhook_subscriptions",
               "webhook_deliveries", "bulk_operations", "staged_uploads", "faults", "web_pixels",
               "customer_segments", "code_discounts", "code_discount_redemptions")


def rules(shop: str) -> list[Rule]:
    return [
        Rule("/_control/health", endpoint="health", methods=["GET"]),
        Rule("/_control/apps", endpoint="app_register", methods=["POST"]),
        Rule("/_control/shops", endpoint="shop_create", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/seed", endpoint="seed", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/reset", endpoint="reset", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/stats", endpoint="stats", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/throttle", endpoint="throttle", methods=["GET", "POST"]),
        Rule(f"/_control/shops/{shop}/install-url/<api_key>", endpoint="install_url", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/session-token/<api_key>", endpoint="session_token_mint", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/uninstall/<api_key>", endpoint="uninstall", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/tokens/<api_key>/expire", endpoint="tokens_expire", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/customers/<int:customer_id>/tags", endpoint="customer_tags",
             methods=["GET", "POST"]),
        Rule(f"/_control/shops/{shop}/simulate", endpoint="simulate", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/live", endpoint="live", methods=["GET", "POST", "DELETE"]),
        Rule(f"/_control/shops/{shop}/shoppers", endpoint="shoppers", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/webhooks", endpoint="webhooks", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/web-pixels", endpoint="web_pixels", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/theme", endpoint="theme", methods=["GET", "PUT"]),
        Rule(f"/_control/shops/{shop}/flow-triggers", endpoint="flow_triggers", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/segments", endpoint="segments", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/discounts", endpoint="discounts", methods=["GET"]),
        Rule(f"/_control/shops/{shop}/compliance/<kind>", endpoint="compliance", methods=["POST"]),
        Rule(f"/_control/shops/{shop}/orders", endpoint="orders_place", methods=["POST"]),
        Rule("/_control/faults", endpoint="faults", methods=["POST", "DELETE"]),
        Rule("/_control/webhooks/flush", endpoint="webhooks_flush", methods=["POST"]),
        *control_catalog.rules(shop),
    ]


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")


def _body(request: Request) -> dict:
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("Expected a JSON object")
    return data


def _shop(app: DevstoreApp, shop: str):
    row = app.store.shop(shop)
    if row is None:
        raise NotFound(f"No shop {shop}")
    return row


def health(app: DevstoreApp, request: Request) -> Response:
    return _json({"ok": True, "shops": [row["domain"] for row in app.store.shops()]})


def app_register(app: DevstoreApp, request: Request) -> Response:
    body = _body(request)
    try:
        app.store.app_register(api_key=body["api_key"], api_secret=body["api_secret"], app_url=body["app_url"],
                               redirect_urls=body.get("redirect_urls"), previous_secret=body.get("previous_secret"))
    except KeyError as exc:
        raise BadRequest(f"missing {exc.args[0]}") from None
    return _json({"ok": True})


def shop_create(app: DevstoreApp, request: Request) -> Response:
    body = _body(request)
    domain = body.get("domain", "")
    if not domain.endswith(".myshopify.com"):
        raise BadRequest("domain must be a *.myshopify.com name")
    row = app.store.shop_create(domain, name=body.get("name"), currency=body.get("currency", "USD"),
                                iana_timezone=body.get("iana_timezone", "America/New_York"),
                                plan=body.get("plan", "shopify"))
    return _json({**dict(row), "base_url": app.config.shop_base_url(domain)})


def seed(app: DevstoreApp, request: Request, shop: str) -> Response:
    from .generator import seed_shop

    _shop(app, shop)
    body = _body(request)
    now = parse_iso(body["now"]) if body.get("now") else None
    report = seed_shop(app.store, shop, customers=int(body.get("customers", 1000)), seed=int(body.get("seed", 1)),
                       now=now)
    return _json(report.__dict__ if hasattr(report, "__dict__") else report)


def reset(app: DevstoreApp, request: Request, shop: str) -> Response:
    _shop(app, shop)
    with app.store.tx() as conn:
        for table in SHOP_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE shop = ?", (shop,))  # noqa: S608 - fixed names
    return _json({"ok": True})


def stats(app: DevstoreApp, request: Request, shop: str) -> Response:
    """What the shop holds, counted the way the app's mirror counts it (test orders excluded)."""
    _shop(app, shop)
    conn = app.store.conn()

    def count(sql: str) -> int:
        return conn.execute(sql, (shop,)).fetchone()[0]

    return _json({
        "customers": count("SELECT COUNT(*) FROM customers WHERE shop = ?"),
        "orders": count("SELECT COUNT(*) FROM orders WHERE shop = ? AND test = 0"),
        "products": count("SELECT COUNT(*) FROM products WHERE shop = ?"),
        "abandoned_checkouts": count("SELECT COUNT(*) FROM checkouts WHERE shop = ? AND completed_at IS NULL"),
    })


def throttle(app: DevstoreApp, request: Request, shop: str) -> Response:
    """GET: how many THROTTLED answers the shop's apps got, and its bucket's size and restore rate.
    POST {maximum_available, restore_rate}: size the bucket so, instead of by the plan (null or {}
    goes back to the plan's)."""
    row = _shop(app, shop)
    api = app.admin_api
    if request.method == "POST":
        body = _body(request)
        if body.get("maximum_available") is None:
            api.bucket_sizes.pop(shop, None)
        else:
            try:
                size, rate = float(body["maximum_available"]), float(body["restore_rate"])
            except (KeyError, TypeError, ValueError):
                raise BadRequest("maximum_available and restore_rate are numbers") from None
            if size <= 0 or rate <= 0:
                raise BadRequest("maximum_available and restore_rate are positive")
            api.bucket_sizes[shop] = (rate, size)
    rate, size = api.bucket_sizes.get(shop) or plan_limits(row["plan"], app.config.restore_multiplier)
    return _json({"throttled": api.throttled.get(shop, 0), "maximum_available": size, "restore_rate": rate})


def install_url(app: DevstoreApp, request: Request, shop: str, api_key: str) -> Response:
    _shop(app, shop)
    return _json({"url": oauth.install_url(app.store, shop, api_key)})


def session_token_mint(app: DevstoreApp, request: Request, shop: str, api_key: str) -> Response:
    _shop(app, shop)
    return _json({"token": oauth.session_token(app.store, shop, api_key,
                                               ttl=int(request.args.get("ttl", 60)))})


def uninstall(app: DevstoreApp, request: Request, shop: str, api_key: str) -> Response:
    _shop(app, shop)
    return _json({"uninstalled": oauth.uninstall(app.store, shop, api_key)})


def tokens_expire(app: DevstoreApp, request: Request, shop: str, api_key: str) -> Response:
    """Expire the app's access tokens now, so the app's refresh path can be exercised."""
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with app.store.tx() as conn:
        count = conn.execute("UPDATE tokens SET expires_at = ? WHERE shop = ? AND api_key = ? AND kind = 'access'",
                             (past, shop, api_key)).rowcount
    return _json({"expired": count})


def customer_tags(app: DevstoreApp, request: Request, shop: str, customer_id: int) -> Response:
    """GET: the tags Shopify holds. POST {add, remove}: a staff member edits them by hand."""
    _shop(app, shop)
    if request.method == "POST":
        from .state import gid
        from .tags import add_tags, remove_tags

        body = _body(request)
        if body.get("add"):
            add_tags(app.store, shop, gid("Customer", customer_id), list(body["add"]))
        if body.get("remove"):
            remove_tags(app.store, shop, gid("Customer", customer_id), list(body["remove"]))
    row = app.store.conn().execute("SELECT tags FROM customers WHERE shop = ? AND id = ?",
                                   (shop, customer_id)).fetchone()
    if row is None:
        raise NotFound("No such customer")
    return _json({"id": customer_id, "tags": json.loads(row["tags"])})


def simulate(app: DevstoreApp, request: Request, shop: str) -> Response:
    from .simulator import TrafficSimulator

    _shop(app, shop)
    body = _body(request)
    sim = TrafficSimulator(app.store, shop, seed=int(body.get("seed", 1)),
                           rate_per_second=float(body.get("rate", 50)),
                           cost_change_rate=float(body.get("cost_changes", 0)))
    counts = sim.run(count=int(body.get("count", 10)))
    return _json({"actions": counts})


def shoppers(app: DevstoreApp, request: Request, shop: str) -> Response:
    """POST {visits, days, seed}: browsing by the shop's browsers and their personas, sent to the shop's app
    pixels (devstore.shoppers): `visits` visits now, and every browser's visits of the last `days` days
    (at most 2: a pixel's batch is not days late)."""
    from .shoppers import ShopperSimulator

    _shop(app, shop)
    body = _body(request)
    try:
        visits, days = int(body.get("visits", 20)), int(body.get("days", 0))
        if not 0 <= days <= 2:
            raise ValueError("days must be 0, 1 or 2")
        sim = ShopperSimulator(app.store, shop, seed=int(body.get("seed", 1)))
    except (TypeError, ValueError) as exc:
        raise BadRequest(str(exc)) from None
    return _json({"visits": sim.run(visits, days=days)})


def live(app: DevstoreApp, request: Request, shop: str) -> Response:
    """POST {rate (actions/s), seed}: keep the shop living in the background; DELETE stops it; GET says
    what it has done."""
    _shop(app, shop)
    if request.method == "POST":
        body = _body(request)
        try:
            rate = float(body.get("rate", 0.5))
            app.live.start(shop, rate=rate, seed=int(body.get("seed", 1)))
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"rate must be a positive number: {exc}") from None
    elif request.method == "DELETE":
        app.live.stop(shop)
    return _json(app.live.status(shop))


def webhooks(app: DevstoreApp, request: Request, shop: str) -> Response:
    _shop(app, shop)
    subs = [dict(row) for row in app.store.conn().execute(
        "SELECT id, api_key, topic, uri, api_version, consecutive_failures FROM webhook_subscriptions "
        "WHERE shop = ? ORDER BY id", (shop,))]
    deliveries = app.sender.deliveries(shop, topic=request.args.get("topic"), status=request.args.get("status"),
                                       limit=int(request.args.get("limit", 100)))
    return _json({"subscriptions": subs, "deliveries": deliveries, "due": app.sender.due(shop)})


def web_pixels(app: DevstoreApp, request: Request, shop: str) -> Response:
    """The web pixels apps activated on the shop, with their settings (what a storefront would load)."""
    _shop(app, shop)
    return _json({"web_pixels": shop_pixels(app.store, shop)})


def theme(app: DevstoreApp, request: Request, shop: str) -> Response:
    """The shop's theme as the theme editor left it: GET it, or PUT a new one (devstore.theme_editor)."""
    _shop(app, shop)
    if request.method == "GET":
        return _json(theme_get(app.store, shop))
    try:
        return _json(theme_set(app.store, shop, _body(request)))
    except ThemeInvalid as error:
        return _json({"error": str(error)}, 422)


def flow_triggers(app: DevstoreApp, request: Request, shop: str) -> Response:
    """The Flow triggers apps sent the shop, newest first (devstore.flow)."""
    _shop(app, shop)
    return _json({"flow_triggers": flow_received(app.store, shop)})


def segments(app: DevstoreApp, request: Request, shop: str) -> Response:
    """The shop's native customer segments, with their live member counts (devstore.customer_segments)."""
    _shop(app, shop)
    return _json({"segments": segments_listing(app.store, shop)})


def discounts(app: DevstoreApp, request: Request, shop: str) -> Response:
    """The shop's code discounts, with their redemptions (devstore.discounts, devstore.discount_checkout)."""
    _shop(app, shop)
    return _json({"discounts": discounts_listing(app.store, shop)})


def webhooks_flush(app: DevstoreApp, request: Request) -> Response:
    """Wait until every due delivery has been attempted (tests and the demo use it)."""
    idle = app.sender.wait_idle(float(request.args.get("timeout", 30)))
    return _json({"idle": idle})


def compliance(app: DevstoreApp, request: Request, shop: str, kind: str) -> Response:
    _shop(app, shop)
    body = _body(request)
    if kind == "data_request":
        compliance_mutations.customers_data_request(app.store, shop, int(body["customer_id"]),
                                                    body.get("orders_requested", []))
    elif kind == "customers_redact":
        compliance_mutations.customers_redact(app.store, shop, int(body["customer_id"]),
                                              body.get("orders_to_redact", []))
    elif kind == "shop_redact":
        compliance_mutations.shop_redact(app.store, shop)
    else:
        raise NotFound(f"Unknown compliance request {kind}")
    return _json({"ok": True})


def orders_place(app: DevstoreApp, request: Request, shop: str) -> Response:
    """POST {orders: [{customer_id, created_at, line_items: [{variant_id, quantity}], device?, source_name?}]}:
    shoppers place these orders at these (possibly past) times, each one sending its webhooks as
    order_create does; a replay of history decides who buys when and places it here."""
    _shop(app, shop)
    body = _body(request)
    # order_create numbers each order MAX(number) + 1 over the shop's orders: a scan of a seeded
    # shop's ~20,000 orders per order (30 ms) without this index, most of a replayed day's placing.
    app.store.conn().execute("CREATE INDEX IF NOT EXISTS orders_shop_number ON orders (shop, number)")
    placed = []
    try:
        for order in body.get("orders", []):
            placed.append(mutations.order_create(
                app.store, shop, line_items=order["line_items"], customer_id=order.get("customer_id"),
                email=order.get("email"), device=order.get("device", "desktop"),
                source_name=order.get("source_name", "web"), now=parse_iso(order["created_at"])))
    except (KeyError, ValueError, mutation_base.NotFound) as exc:
        raise BadRequest(f"order {len(placed)}: {exc}") from None
    return _json({"orders": placed})


def faults(app: DevstoreApp, request: Request) -> Response:
    """POST {shop ('*' for all), kind, params (null clears)}; DELETE clears every fault."""
    if request.method == "DELETE":
        app.store.faults_clear()
        return _json({"ok": True})
    body = _body(request)
    if not body.get("kind"):
        raise BadRequest("kind is required")
    app.store.fault_set(body.get("shop", "*"), body["kind"], body.get("params"))
    return _json({"ok": True})


HANDLERS = {
    "health": health,
    "app_register": app_register,
    "shop_create": shop_create,
    "seed": seed,
    "reset": reset,
    "stats": stats,
    "throttle": throttle,
    "install_url": install_url,
    "session_token_mint": session_token_mint,
    "uninstall": uninstall,
    "tokens_expire": tokens_expire,
    "customer_tags": customer_tags,
    "simulate": simulate,
    "live": live,
    "shoppers": shoppers,
    "webhooks": webhooks,
    "web_pixels": web_pixels,
    "theme": theme,
    "flow_triggers": flow_triggers,
    "segments": segments,
    "discounts": discounts,
    "webhooks_flush": webhooks_flush,
    "compliance": compliance,
    "orders_place": orders_place,
    "faults": faults,
    **control_catalog.HANDLERS,
}
