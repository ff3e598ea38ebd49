"""Privacy compliance: Shopify's data requests and redactions, and retention (raw payloads, inactive customers).

Each module that stores customer data registers its part here: erasers (`register_customer_eraser`,
`register_pending_eraser`, `register_shop_eraser`), a section of the data-request export
(`register_export_section`) and a retention purge (`register_retention_purge`); `webhooks` registers
the raw deliveries' (webhooks.privacy), so this package never imports it.

Erasing a customer has two layers. `customer_personal_data_erase` is the one redaction of personal
data: every registered eraser, then the customer's email, phone and names in the store mirror; customers/redact and the inactive-customer retention both run it.
customers/redact then forgets the customer altogether (the `identity` erasers, then the mirror's
rows, last because other tables point at them); the retention stops there, keeping the Shopify id
as a pseudonym so the shop's orders, segments, KPIs and tags keep pointing at the same customer.
Erasers get the customer's keys gathered before anything is erased, return counts (never data),
and must be idempotent: Shopify may send a request twice, and a second run finds nothing and succeeds.

Choices, and why:
- A redacted customer's row is deleted, not tombstoned: the request log keeps the Shopify id it
  came for, and nothing else needs it. Its orders are kept but anonymised (no email, no customer
  link, no cart/checkout token, no discount codes): what remains is a sale of products at a price,
  which the shop's revenue figures need and which points at nobody. Checkouts and the carts they
  name are deleted: they are the customer's browsing, with no shop-level value once unlinked.
- Stored deliveries that concern them keep their metadata row (webhook id for dedupe, topic,
  times) with the payload blanked; those not processed yet are marked ignored, so the data they
  carry is never applied after the erasure.
- Inactive customers (no order, checkout or profile change for the shop's `inactive_customer_days`)
  are anonymised, not deleted: the shop still holds them in Shopify and its segments, tags and KPIs
  are about them, so only what identifies them goes (their row's email, phone and names, the
  email on their orders and checkouts, raw deliveries about them, earlier exports). If they come
  back, Shopify's next customers/update delivery fills their row in again.
- shop/redact deletes the Shop row (tokens, owner's name and email) with everything hanging off it.
  Shopify sends it 48 h after an uninstall; a shop that has reinstalled since is left alone, since
  erasing would break a live installation the merchant came back to.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from segments.membership.models import FlowTrigger, Membership, MembershipEvent, TagChange
from segments.metrics.models import CustomerMetrics
from segments.mirror.models import (
    Cart, Checkout, ComplianceKind, ComplianceRequest, Customer, LineItem, Order, Product, Refund, ShopSync,
)
from segments.privacy.selectors import (
    PERSONAL_CUSTOMER_FIELDS, CustomerKeys, customer_carts, customer_checkouts, customer_data_export, customer_keys,
    customer_orders, customers_inactive, export_counts,
)
from segments.shops.models import OAuthState, Shop, ShopStatus
from segments.tags.bulk import bulk_lines_erase

log = logging.getLogger(__name__)

# Customers anonymised per shop per retention run: each costs a scan of the shop's stored payloads,
# so a first run over years of history is spread over a few hourly runs.
INACTIVE_CUSTOMERS_PER_RUN = 500


class ComplianceRequestInvalid(Exception):
    """A compliance payload without the customer it is about; retried, then visible as a failed event."""


@dataclass(frozen=True)
class ShopErasure:
    shop_domain: str
    shop: Shop | None        # None when we never knew the shop (or erased it already)


CustomerEraser = Callable[..., Mapping[str, int]]     # fn(*, keys: CustomerKeys) -> counts
ShopEraser = Callable[..., Mapping[str, int]]         # fn(*, erasure: ShopErasure) -> counts

_customer_erasers: list[CustomerEraser] = []
_identity_erasers: list[CustomerEraser] = []
_pending_erasers: list[CustomerEraser] = []
_shop_erasers: list[ShopEraser] = []
_retention_purges: list[Callable[..., int]] = []


def register_customer_eraser(fn: CustomerEraser, *, identity: bool = False) -> CustomerEraser:
    """Add a module's customer eraser (usable as a decorator); registering the same function twice is a no-op.

    An eraser of personal data (the default) runs whenever a customer is erased: customers/redact
    and the inactive-customer retention. An `identity` eraser removes what still points at the
    customer once their personal data is gone (their Shopify id, their row's pk) and runs for
    customers/redact only; the retention keeps that pseudonym on purpose.
    """
    registry = _identity_erasers if identity else _customer_erasers
    if fn not in registry:
        registry.append(fn)
    return fn


def register_pending_eraser(fn: CustomerEraser) -> CustomerEraser:
    """Add an eraser run first by customers/redact only: what is about the customer and not applied
    yet never will be (the retention leaves it: it is the customer coming back)."""
    if fn not in _pending_erasers:
        _pending_erasers.append(fn)
    return fn


def register_retention_purge(fn: Callable[..., int]) -> Callable[..., int]:
    """Add an hourly retention purge, fn(*, now) -> rows purged."""
    if fn not in _retention_purges:
        _retention_purges.append(fn)
    return fn


def register_shop_eraser(fn: ShopEraser) -> ShopEraser:
    """Add a module's shop eraser, run before the mirror and the Shop row are deleted."""
    if fn not in _shop_erasers:
        _shop_erasers.append(fn)
    return fn


def _add(counts: dict[str, int], more: Mapping[str, int]) -> None:
    for key, value in more.items():
        counts[key] = counts.get(key, 0) + int(value)


def _customer_id(payload: dict) -> int:
    try:
        return int((payload.get("customer") or {})["id"])
    except (KeyError, TypeError, ValueError):
        raise ComplianceRequestInvalid("payload has no customer.id") from None


def _shopify_ids(values: Iterable | None) -> list[int]:
    ids = []
    for value in values or ():
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue  # not an id; nothing of ours can be keyed by it
    return ids


def _keys(*, shop_domain: str, payload: dict, orders_key: str) -> CustomerKeys:
    customer = payload.get("customer") or {}
    return customer_keys(shop_domain=shop_domain, customer_shopify_id=_customer_id(payload),
                         emails=[customer.get("email") or ""], order_shopify_ids=_shopify_ids(payload.get(orders_key)))


def _finish(request: ComplianceRequest, counts: dict[str, int]) -> ComplianceRequest:
    request.summary, request.completed_at = counts, timezone.now()
    request.save(update_fields=["summary", "completed_at", "export"])
    # Counts only: never an email, a name or a customer id in the logs.
    log.info("compliance %s for shop %s done (request %s): %s", request.kind, request.shop_domain, request.pk,
             counts)
    return request


# -- customers/data_request ------------------------------------------------------------------------
def compliance_data_request(*, shop_domain: str, payload: dict) -> ComplianceRequest:
    """Log the request and store everything we hold about the customer as an export the merchant downloads."""
    request_id = str((payload.get("data_request") or {}).get("id") or "")[:100]
    with transaction.atomic():
        keys = _keys(shop_domain=shop_domain, payload=payload, orders_key="orders_requested")
        if request_id:
            done = ComplianceRequest.objects.filter(shop_domain=shop_domain, kind=ComplianceKind.DATA_REQUEST,
                                                    request_id=request_id, completed_at__isnull=False).first()
            if done is not None:
                return done  # the same request delivered again
        request = ComplianceRequest.objects.create(shop_domain=shop_domain, kind=ComplianceKind.DATA_REQUEST,
                                                   customer_shopify_id=keys.customer_shopify_id,
                                                   request_id=request_id)
        request.export = customer_data_export(keys=keys,
                                              orders_requested=_shopify_ids(payload.get("orders_requested")))
        return _finish(request, export_counts(export=request.export))


# -- customers/redact ------------------------------------------------------------------------------
def compliance_customer_redact(*, shop_domain: str, payload: dict) -> ComplianceRequest:
    """Erase the customer's personal data everywhere we hold it; works for uninstalled and unknown shops."""
    with transaction.atomic():
        keys = _keys(shop_domain=shop_domain, payload=payload, orders_key="orders_to_redact")
        request = ComplianceRequest.objects.create(shop_domain=shop_domain, kind=ComplianceKind.CUSTOMER_REDACT,
                                                   customer_shopify_id=keys.customer_shopify_id)
        counts: dict[str, int] = {}
        for eraser in _pending_erasers:
            _add(counts, eraser(keys=keys))
        _add(counts, customer_personal_data_erase(keys=keys))
        for eraser in _identity_erasers:
            _add(counts, eraser(keys=keys))
        _add(counts, _forget_customer_mirror(keys=keys))
        return _finish(request, counts)


def customer_personal_data_erase(*, keys: CustomerKeys) -> dict[str, int]:
    """Erase what identifies the customer and keep what they did: every registered eraser (raw
    deliveries, exports, ...), then the email, phone and names on their mirror rows and the email on
    their orders and checkouts. The one redaction shared by customers/redact and the retention."""
    counts: dict[str, int] = {}
    for eraser in _customer_erasers:
        _add(counts, eraser(keys=keys))
    _add(counts, _blank_customer_mirror(keys=keys))
    return counts


def _erase_customer_exports(*, keys: CustomerKeys) -> dict[str, int]:
    """Exports of earlier data requests are a copy of the customer's data."""
    erased = ComplianceRequest.objects.filter(
        shop_domain=keys.shop_domain, kind=ComplianceKind.DATA_REQUEST, customer_shopify_id=keys.customer_shopify_id,
        export__isnull=False).update(export=None)
    return {"compliance_exports": erased}


def _blank_customer_mirror(*, keys: CustomerKeys) -> dict[str, int]:
    if keys.shop is None:
        return {}
    personal = Q()
    for name in PERSONAL_CUSTOMER_FIELDS:
        personal |= ~Q(**{name: ""})
    customers = Customer.objects.filter(pk__in=keys.customer_pks).filter(personal).update(
        **{name: "" for name in PERSONAL_CUSTOMER_FIELDS})
    orders = customer_orders(keys=keys).exclude(email="").update(email="")
    checkouts = customer_checkouts(keys=keys).exclude(email="").update(email="")
    return {"customers_blanked": customers, "order_emails_blanked": orders, "checkout_emails_blanked": checkouts}


def _forget_customer_mirror(*, keys: CustomerKeys) -> dict[str, int]:
    """customers/redact only: the orders stay as sales of nobody; the rest of the customer goes."""
    if keys.shop is None:
        return {}
    carts = customer_carts(keys=keys).delete()[0]
    checkouts = customer_checkouts(keys=keys).delete()[0]
    anonymous = {"customer": None, "email": "", "cart_token": "", "checkout_token": "", "discount_codes": []}
    orders = customer_orders(keys=keys).exclude(**anonymous).update(**anonymous)
    _, deleted = Customer.objects.filter(pk__in=keys.customer_pks).delete()
    return {"customers": deleted.get(Customer._meta.label, 0), "orders_anonymised": orders,
            "checkouts": checkouts, "carts": carts}


def _erase_bulk_tag_lines(*, keys: CustomerKeys) -> dict[str, int]:
    """A bulk tag operation's lines name the customer until Shopify has run it."""
    if keys.shop is None or not keys.customer_pks:
        return {}
    return bulk_lines_erase(shop=keys.shop, customer_pks=keys.customer_pks)


register_customer_eraser(_erase_customer_exports)
register_customer_eraser(_erase_bulk_tag_lines, identity=True)


# -- shop/redact -----------------------------------------------------------------------------------
def compliance_shop_redact(*, shop_domain: str, payload: dict) -> ComplianceRequest:
    """Erase everything held for the shop: mirror, deliveries, sync state, exports and the Shop row."""
    with transaction.atomic():
        request = ComplianceRequest.objects.create(shop_domain=shop_domain, kind=ComplianceKind.SHOP_REDACT)
        shop = Shop.objects.select_for_update().filter(domain=shop_domain).first()
        if shop is not None and shop.status != ShopStatus.UNINSTALLED:
            log.warning("compliance shop/redact for shop %s skipped: the shop has the app installed again",
                        shop_domain)
            return _finish(request, {"skipped_installed": 1})
        erasure = ShopErasure(shop_domain=shop_domain, shop=shop)
        counts: dict[str, int] = {}
        for eraser in _shop_erasers:
            _add(counts, eraser(erasure=erasure))
        _add(counts, _erase_shop_rows(erasure=erasure))
        return _finish(request, counts)


def _erase_shop_exports(*, erasure: ShopErasure) -> dict[str, int]:
    erased = ComplianceRequest.objects.filter(shop_domain=erasure.shop_domain,
                                              export__isnull=False).update(export=None)
    return {"compliance_exports": erased}


register_shop_eraser(_erase_shop_exports)

# Children before parents. One DELETE per table: Django's collector would load every row of a large
# shop (a million customers' memberships, history and metrics rows included).
_SHOP_TABLES = (MembershipEvent, Membership, TagChange, FlowTrigger, CustomerMetrics, LineItem, Refund, Order, Checkout, Cart,
                Customer, Product, ShopSync)


def _erase_shop_rows(*, erasure: ShopErasure) -> dict[str, int]:
    """The mirror, sync state, install nonces and the Shop row itself."""
    counts = {"oauth_states": OAuthState.objects.filter(shop=erasure.shop_domain).delete()[0]}
    if erasure.shop is None:
        return counts
    with connection.cursor() as cursor:
        for model in _SHOP_TABLES:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE shop_id = %s",
                           [erasure.shop.pk])
            counts[model._meta.model_name] = cursor.rowcount
    # The ORM delete takes along rows of tables whose module registered no eraser but cascade from Shop.
    _, deleted = Shop.objects.filter(pk=erasure.shop.pk).delete()
    counts["shop"] = deleted.get(Shop._meta.label, 0)
    return counts


# -- retention -------------------------------------------------------------------------------------
def retention_purge(*, now: dt.datetime | None = None) -> int:
    """Every registered retention purge (raw webhook payloads past their shop's retention, ...)."""
    now = now or timezone.now()
    return sum(purge(now=now) for purge in _retention_purges)


def shop_inactive_customers_anonymise(*, shop: Shop, now: dt.datetime | None = None,
                                      limit: int = INACTIVE_CUSTOMERS_PER_RUN) -> int:
    """Anonymise (customer_personal_data_erase) up to `limit` of the shop's customers inactive for
    longer than its `inactive_customer_days` (0: never). Returns how many were anonymised."""
    if not shop.inactive_customer_days:
        return 0
    before = (now or timezone.now()) - dt.timedelta(days=shop.inactive_customer_days)
    candidates = list(customers_inactive(shop=shop, before=before).order_by("pk")
                      .values_list("pk", "shopify_id")[:limit])
    counts: dict[str, int] = {}
    done = 0
    for pk, shopify_id in candidates:
        with transaction.atomic():
            # Locked and checked again: a profile update committed meanwhile makes them active.
            locked = list(Customer.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True))
            if not locked or not customers_inactive(shop=shop, before=before).filter(pk=pk).exists():
                continue
            _add(counts, customer_personal_data_erase(keys=customer_keys(shop_domain=shop.domain,
                                                                         customer_shopify_id=shopify_id)))
            done += 1
    if candidates:
        # Counts only, as for the requests: never who.
        log.info("retention: %d inactive customers of shop %s anonymised: %s", done, shop.pk, counts)
    return done
