"""The explicit topic table: each topic's handler, the scope its subscription needs, and whether it
is subscribed through the API. It is the one list of topics: the subscriptions made per shop
(segments.shops.subscriptions) are registered from it (webhooks.apps).

A handler gets (shop_domain, payload) and must be idempotent; a `timed` one also gets when the event
occurred (a late app/uninstalled must not undo a reinstall, a late consent or shop change must not
win over a newer one).

Store topics find the installed shop (none: nothing to do), parse the REST payload into records
(segments.mirror.rest) and hand them to the mirror's writer, which holds the out-of-order guard.
An exception fails the event, which webhook_event_process records and retries with backoff.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from segments.mirror import costs, orders, rest, rest_costs, writer
from segments.mirror.backfill import backfill_on_bulk_finish
from segments.privacy.compliance import compliance_customer_redact, compliance_data_request, compliance_shop_redact
from segments.shops.details import shop_details_apply, shop_details_parse, shop_scopes_apply, shop_scopes_parse
from segments.shops.install import shop_uninstall
from segments.shops.models import Shop, ShopStatus
from segments.tags.drift import tag_event_observe

Handler = Callable[..., None]


INSTALLED_SHOP_SQL = "SELECT {commit_mode}id FROM segments_shop WHERE domain = %s AND status = %s"


def _installed_shop(domain: str) -> Shop | None:
    """The shop (its pk; nothing else is read) if we still serve it: events waiting in the outbox
    can outlive an install.

    The same round trip lets this transaction commit without waiting for its WAL
    flush. That is safe because the mirror writes and the event's "processed" mark commit
    together: a crash that loses the commit loses both, the event stays pending, and the sweeper
    applies it again (handlers are idempotent). The flush wait was a fifth of a delivery's time.
    """
    commit_mode = "set_config('synchronous_commit', 'off', true), " if connection.in_atomic_block else ""
    with connection.cursor() as cursor:
        cursor.execute(INSTALLED_SHOP_SQL.format(commit_mode=commit_mode), [domain, ShopStatus.INSTALLED.value])
        row = cursor.fetchone()
    return Shop(pk=row[-1], domain=domain) if row else None


def app_uninstalled(shop_domain: str, payload: dict, occurred_at: dt.datetime | None = None) -> None:
    shop_uninstall(domain=shop_domain, occurred_at=occurred_at)


def shop_updated(shop_domain: str, payload: dict, occurred_at: dt.datetime | None = None) -> None:
    """shop/update: the time zone (every day boundary), currency and plan, re-read from the Shop
    resource; ordered by when the delivery was triggered."""
    shop = _installed_shop(shop_domain)
    if shop is not None:
        shop_details_apply(shop_id=shop.pk, details=shop_details_parse(payload), at=occurred_at or timezone.now())


def app_scopes_updated(shop_domain: str, payload: dict, occurred_at: dt.datetime | None = None) -> None:
    """app/scopes_update: the scopes the shop now grants (`current`), as of the body's `updated_at`,
    else when the delivery was triggered."""
    shop = _installed_shop(shop_domain)
    scopes = shop_scopes_parse(payload)
    if shop is not None and scopes is not None:
        at = rest.timestamp(payload.get("updated_at")) or occurred_at or timezone.now()
        shop_scopes_apply(shop_id=shop.pk, scopes=scopes, at=at)


# -- orders and refunds --------------------------------------------------------------------------
def order_changed(shop_domain: str, payload: dict) -> None:
    """orders/create, orders/updated, orders/paid, orders/cancelled: the whole order, every time."""
    shop = _installed_shop(shop_domain)
    if shop is None:
        return
    if rest.order_is_test(payload):  # test orders are not behaviour; one that became a test order goes
        orders.orders_delete(shop=shop, shopify_ids=[rest.order_id(payload)])
        return
    # the writer gives line items their product's type and closes the order's checkout
    orders.orders_upsert(shop=shop, records=[rest.order_record(payload)])


def orders_changed(shop_domain: str, payloads: list[dict]) -> bool:
    """A run of one shop's deliveries of one order topic (the drain's batch), applied together: one
    upsert of their orders, line items and refunds instead of one per delivery. False, and nothing
    written, when the order of deliveries within the run decides an outcome: a test order whose id
    also comes as a real one, or one order twice with the same updated_at (the writer's same-second
    rule compares each with what is stored). The drain then applies them one by one."""
    shop = _installed_shop(shop_domain)
    if shop is None:
        return True
    test_ids = {rest.order_id(p) for p in payloads if rest.order_is_test(p)}
    records = [rest.order_record(p) for p in payloads if not rest.order_is_test(p)]
    versions = {(r.shopify_id, r.updated_at) for r in records}
    if test_ids & {r.shopify_id for r in records} or len(versions) < len(records):
        return False
    orders.orders_delete(shop=shop, shopify_ids=test_ids)
    orders.orders_upsert(shop=shop, records=records)
    return True


def refund_created(shop_domain: str, payload: dict) -> None:
    """refunds/create; OrderNotYetKnown propagates so the event is retried after the order lands."""
    shop = _installed_shop(shop_domain)
    if shop is None or rest.refund_is_test(payload):
        return
    orders.refunds_upsert(shop=shop, records=[rest.refund_record(payload)])


# -- checkouts and carts -------------------------------------------------------------------------
def checkout_changed(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        orders.checkouts_upsert(shop=shop, records=[rest.checkout_record(payload)])


def checkout_deleted(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        deletion = rest.checkout_deleted(payload)
        orders.checkout_delete(shop=shop, token=deletion.token, shopify_id=deletion.shopify_id,
                               cart_token=deletion.cart_token)


def cart_changed(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        orders.carts_upsert(shop=shop, records=[rest.cart_record(payload)])


# -- customers -----------------------------------------------------------------------------------
def customer_changed(shop_domain: str, payload: dict) -> None:
    """customers/create|update. Our own tag writes echo back here; the writer dirties none of them."""
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.customers_upsert(shop=shop, records=[rest.customer_record(payload)])


def customer_deleted(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.customer_delete(shop=shop, shopify_id=rest.customer_deleted_id(payload))


def customers_merged(shop_domain: str, payload: dict) -> None:
    """customers/merge reports failed and in-progress merges too; only a completed one moves history."""
    shop = _installed_shop(shop_domain)
    merge = rest.customer_merge(payload)
    if shop is not None and merge.completed:
        writer.customers_merge(shop=shop, kept_shopify_id=merge.kept_shopify_id,
                               merged_shopify_id=merge.merged_shopify_id)


def _customer_tags_changed(shop_domain: str, payload: dict, *, added: bool) -> None:
    """customer.tags_added / _removed, by anyone (our own writes included). Tag sync first sees the
    change (stale events about our tags are dropped, drift is noticed); the writer then applies it,
    marking the customer dirty only for tags outside the shop's prefix."""
    shop = _installed_shop(shop_domain)
    if shop is None:
        return
    change = rest.tag_change(payload)
    occurred_at = rest.timestamp(payload.get("occurredAt"))
    tags = tag_event_observe(shop_id=shop.pk, shopify_id=change.customer_shopify_id, tags=change.tags, added=added,
                             occurred_at=occurred_at)
    if tags:
        writer.customer_tags_apply(shop=shop, shopify_id=change.customer_shopify_id, occurred_at=occurred_at,
                                   **({"added": tags} if added else {"removed": tags}))


def customer_tags_added(shop_domain: str, payload: dict) -> None:
    _customer_tags_changed(shop_domain, payload, added=True)


def customer_tags_removed(shop_domain: str, payload: dict) -> None:
    _customer_tags_changed(shop_domain, payload, added=False)


def _consent_apply(shop_domain: str, consent: rest.ConsentRecord, occurred_at: dt.datetime | None) -> None:
    """A consent change is as new as its own consent_updated_at; Shopify sends that null at times
    (its samples do), and then the change is as new as its delivery's X-Shopify-Triggered-At. The
    writer orders it against what the customer holds (writer.customer_consent_apply)."""
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.customer_consent_apply(shop=shop, shopify_id=consent.customer_shopify_id,
                                      email_marketing=consent.email_marketing, sms_marketing=consent.sms_marketing,
                                      at=consent.at or occurred_at or timezone.now())


def email_consent_changed(shop_domain: str, payload: dict, occurred_at: dt.datetime | None = None) -> None:
    _consent_apply(shop_domain, rest.email_consent(payload), occurred_at)


def sms_consent_changed(shop_domain: str, payload: dict, occurred_at: dt.datetime | None = None) -> None:
    _consent_apply(shop_domain, rest.sms_consent(payload), occurred_at)


# -- products and their variants' costs ---------------------------------------------------------
def product_changed(shop_domain: str, payload: dict) -> None:
    """products/create|update: the product, and which inventory item holds each variant's cost."""
    shop = _installed_shop(shop_domain)
    if shop is not None:
        orders.products_upsert(shop=shop, records=[rest.product_record(payload)])
        costs.variants_link(shop=shop, links=rest_costs.variant_links(payload))


def product_deleted(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        orders.product_delete(shop=shop, shopify_id=rest.product_deleted_id(payload))


def inventory_item_changed(shop_domain: str, payload: dict) -> None:
    """inventory_items/create|update: the item's unit cost, applied only when newer than the one held."""
    shop = _installed_shop(shop_domain)
    if shop is not None:
        costs.costs_upsert(shop=shop, records=[rest_costs.inventory_item_record(payload)])


def inventory_item_deleted(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        costs.costs_delete(shop=shop, inventory_item_ids=[rest_costs.inventory_item_deleted_id(payload)])


# -- backfill and compliance (services owned by their own modules, imported when first needed) ---
def bulk_operation_finished(shop_domain: str, payload: dict) -> None:
    if _installed_shop(shop_domain) is not None:
        backfill_on_bulk_finish(shop_domain=shop_domain, payload=payload)


def customers_data_request(shop_domain: str, payload: dict) -> None:
    compliance_data_request(shop_domain=shop_domain, payload=payload)


def customers_redact(shop_domain: str, payload: dict) -> None:
    compliance_customer_redact(shop_domain=shop_domain, payload=payload)


def shop_redact(shop_domain: str, payload: dict) -> None:
    compliance_shop_redact(shop_domain=shop_domain, payload=payload)


@dataclass(frozen=True)
class Topic:
    handler: Handler
    scope: str | None = None    # the access scope a subscription needs (write_X implies read_X)
    subscribed: bool = True     # False: a compliance topic, set in the app's TOML, never through the API
    timed: bool = False         # the handler also takes `occurred_at`
    # Applies a run of one shop's deliveries of this topic together (shop_domain, payloads) -> bool;
    # False: applied nothing, take them one at a time.
    many: Callable[[str, list[dict]], bool] | None = None


ORDERS, CUSTOMERS, PRODUCTS = "read_orders", "read_customers", "read_products"
TOPICS: dict[str, Topic] = {
    "app/uninstalled": Topic(app_uninstalled, timed=True),
    "app/scopes_update": Topic(app_scopes_updated, timed=True),
    "shop/update": Topic(shop_updated, timed=True),
    "bulk_operations/finish": Topic(bulk_operation_finished),
    "orders/create": Topic(order_changed, ORDERS, many=orders_changed),
    "orders/updated": Topic(order_changed, ORDERS, many=orders_changed),
    "orders/paid": Topic(order_changed, ORDERS, many=orders_changed),
    "orders/cancelled": Topic(order_changed, ORDERS, many=orders_changed),
    "refunds/create": Topic(refund_created, ORDERS),
    "checkouts/create": Topic(checkout_changed, ORDERS),      # checkouts and carts need read_orders
    "checkouts/update": Topic(checkout_changed, ORDERS),
    "checkouts/delete": Topic(checkout_deleted, ORDERS),
    "carts/create": Topic(cart_changed, ORDERS),
    "carts/update": Topic(cart_changed, ORDERS),
    "customers/create": Topic(customer_changed, CUSTOMERS),
    "customers/update": Topic(customer_changed, CUSTOMERS),
    "customers/delete": Topic(customer_deleted, CUSTOMERS),
    "customers/merge": Topic(customers_merged, CUSTOMERS),
    "customer.tags_added": Topic(customer_tags_added, CUSTOMERS),
    "customer.tags_removed": Topic(customer_tags_removed, CUSTOMERS),
    "customers_email_marketing_consent/update": Topic(email_consent_changed, CUSTOMERS, timed=True),
    "customers_marketing_consent/update": Topic(sms_consent_changed, CUSTOMERS, timed=True),
    "products/create": Topic(product_changed, PRODUCTS),
    "products/update": Topic(product_changed, PRODUCTS),
    "products/delete": Topic(product_deleted, PRODUCTS),
    # Shopify takes read_inventory or read_products for these; the app holds read_products.
    "inventory_items/create": Topic(inventory_item_changed, PRODUCTS),
    "inventory_items/update": Topic(inventory_item_changed, PRODUCTS),
    "inventory_items/delete": Topic(inventory_item_deleted, PRODUCTS),
    "customers/data_request": Topic(customers_data_request, subscribed=False),
    "customers/redact": Topic(customers_redact, subscribed=False),
    "shop/redact": Topic(shop_redact, subscribed=False),
}
HANDLERS: dict[str, Handler] = {topic: spec.handler for topic, spec in TOPICS.items()}
RUN_HANDLERS = {topic: spec.many for topic, spec in TOPICS.items() if spec.many is not None}
# Topics processed even when the shop is uninstalled or unknown (the law still applies).
ALWAYS_PROCESSED = {"app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"}
# Topics whose handler also takes `occurred_at`: when the event happened (X-Shopify-Triggered-At,
# else when the delivery was received), which orders it against what is stored.
TIMED = frozenset(topic for topic, spec in TOPICS.items() if spec.timed)


def subscription_topic(topic: str) -> str:
    """Shopify's GraphQL name of a topic: orders/create -> ORDERS_CREATE, customer.tags_added ->
    CUSTOMER_TAGS_ADDED, app/scopes_update -> APP_SCOPES_UPDATE."""
    return topic.upper().replace("/", "_").replace(".", "_")


def subscriptions() -> dict[str, str | None]:
    """GraphQL topic -> the scope it needs, for every topic subscribed through the API."""
    return {subscription_topic(topic): spec.scope for topic, spec in TOPICS.items() if spec.subscribed}
