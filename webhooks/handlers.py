"""The explicit topic -> handler table. A handler gets (shop_domain, payload) and must be idempotent;
app/uninstalled also gets when it occurred (a late one must not undo a reinstall).

Store topics find the installed shop (none: nothing to do), parse the REST payload into records
(segments.mirror.rest) and hand them to the mirror's writer, which holds the out-of-order guard.
An exception fails the event, which webhook_event_process records and retries with backoff.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from segments.mirror import rest, writer
from segments.models import Shop, ShopStatus
from segments.services.install import shop_uninstall

Handler = Callable[[str, dict], None]


INSTALLED_SHOP_SQL = "SELECT {commit_mode}id FROM segments_shop WHERE domain = %s AND status = %s"


def _installed_shop(domain: str) -> Shop | None:
    """The shop (its pk; nothing else is read) if we still serve it: events waiting in the outbox
    can outlive an install.

    On PostgreSQL the same round trip lets this transaction commit without waiting for its WAL
    flush. That is safe because the mirror writes and the event's "processed" mark commit
    together: a crash that loses the commit loses both, the event stays pending, and the sweeper
    applies it again (handlers are idempotent). The flush wait was a fifth of a delivery's time.
    """
    commit_mode = ("set_config('synchronous_commit', 'off', true), "
                   if connection.vendor == "postgresql" and connection.in_atomic_block else "")
    with connection.cursor() as cursor:
        cursor.execute(INSTALLED_SHOP_SQL.format(commit_mode=commit_mode), [domain, ShopStatus.INSTALLED.value])
        row = cursor.fetchone()
    return Shop(pk=row[-1], domain=domain) if row else None


def app_uninstalled(shop_domain: str, payload: dict, occurred_at: dt.datetime | None = None) -> None:
    shop_uninstall(domain=shop_domain, occurred_at=occurred_at)


# -- orders and refunds --------------------------------------------------------------------------
def order_changed(shop_domain: str, payload: dict) -> None:
    """orders/create, orders/updated, orders/paid, orders/cancelled: the whole order, every time."""
    shop = _installed_shop(shop_domain)
    if shop is None:
        return
    if rest.order_is_test(payload):  # test orders are not behaviour; one that became a test order goes
        writer.orders_delete(shop=shop, shopify_ids=[rest.order_id(payload)])
        return
    # the writer gives line items their product's type and closes the order's checkout
    writer.orders_upsert(shop=shop, records=[rest.order_record(payload)])


def refund_created(shop_domain: str, payload: dict) -> None:
    """refunds/create; OrderNotYetKnown propagates so the event is retried after the order lands."""
    shop = _installed_shop(shop_domain)
    if shop is None or rest.refund_is_test(payload):
        return
    writer.refunds_upsert(shop=shop, records=[rest.refund_record(payload)])


# -- checkouts and carts -------------------------------------------------------------------------
def checkout_changed(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.checkouts_upsert(shop=shop, records=[rest.checkout_record(payload)])


def checkout_deleted(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        deletion = rest.checkout_deleted(payload)
        writer.checkout_delete(shop=shop, token=deletion.token, shopify_id=deletion.shopify_id,
                               cart_token=deletion.cart_token)


def cart_changed(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.carts_upsert(shop=shop, records=[rest.cart_record(payload)])


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
    from segments.services.tag_drift import tag_event_observe

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


# -- products ------------------------------------------------------------------------------------
def product_changed(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.products_upsert(shop=shop, records=[rest.product_record(payload)])


def product_deleted(shop_domain: str, payload: dict) -> None:
    shop = _installed_shop(shop_domain)
    if shop is not None:
        writer.product_delete(shop=shop, shopify_id=rest.product_deleted_id(payload))


# -- backfill and compliance (services owned by their own modules, imported when first needed) ---
def bulk_operation_finished(shop_domain: str, payload: dict) -> None:
    from segments.services.backfill import backfill_on_bulk_finish

    if _installed_shop(shop_domain) is not None:
        backfill_on_bulk_finish(shop_domain=shop_domain, payload=payload)


def customers_data_request(shop_domain: str, payload: dict) -> None:
    from segments.services.compliance import compliance_data_request

    compliance_data_request(shop_domain=shop_domain, payload=payload)


def customers_redact(shop_domain: str, payload: dict) -> None:
    from segments.services.compliance import compliance_customer_redact

    compliance_customer_redact(shop_domain=shop_domain, payload=payload)


def shop_redact(shop_domain: str, payload: dict) -> None:
    from segments.services.compliance import compliance_shop_redact

    compliance_shop_redact(shop_domain=shop_domain, payload=payload)


HANDLERS: dict[str, Handler] = {
    "app/uninstalled": app_uninstalled,
    "orders/create": order_changed,
    "orders/updated": order_changed,
    "orders/paid": order_changed,
    "orders/cancelled": order_changed,
    "refunds/create": refund_created,
    "checkouts/create": checkout_changed,
    "checkouts/update": checkout_changed,
    "checkouts/delete": checkout_deleted,
    "carts/create": cart_changed,
    "carts/update": cart_changed,
    "customers/create": customer_changed,
    "customers/update": customer_changed,
    "customers/delete": customer_deleted,
    "customers/merge": customers_merged,
    "customer.tags_added": customer_tags_added,
    "customer.tags_removed": customer_tags_removed,
    "customers_email_marketing_consent/update": email_consent_changed,
    "customers_marketing_consent/update": sms_consent_changed,
    "products/create": product_changed,
    "products/update": product_changed,
    "products/delete": product_deleted,
    "bulk_operations/finish": bulk_operation_finished,
    "customers/data_request": customers_data_request,
    "customers/redact": customers_redact,
    "shop/redact": shop_redact,
}

# Topics processed even when the shop is uninstalled or unknown (the law still applies).
ALWAYS_PROCESSED = {"app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"}
# Topics whose handler also takes `occurred_at`: when the event happened (X-Shopify-Triggered-At,
# else when the delivery was received), which orders it against what is stored.
TIMED = frozenset({"app/uninstalled", "customers_email_marketing_consent/update",
                   "customers_marketing_consent/update"})
