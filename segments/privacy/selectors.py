"""Reads for privacy compliance: what points at one customer, their data as an export, the request log.

Data kept outside this app's tables (the raw webhook deliveries) joins the export as a registered
section (`register_export_section`; webhooks.privacy registers the deliveries).
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from segments.membership.models import FlowTrigger, Membership, MembershipEvent
from segments.mirror.models import Cart, Checkout, ComplianceKind, ComplianceRequest, Customer, LineItem, Order, Refund
from segments.shops.models import Shop
from segments.tags.models import TagAudit

EXPORT_FORMAT = "shopseg.customer-data/1"
# Export sections other apps add: name -> fn(*, keys) -> list of JSON-ready records.
_export_sections: dict[str, Callable[..., list]] = {}
# Columns that are our bookkeeping (row ids, foreign keys, recompute marks), not data about the customer.
INTERNAL_COLUMNS = frozenset({"id", "shop_id", "customer_id", "order_id", "dirty_at"})


@dataclass(frozen=True)
class CustomerKeys:
    """Everything that points at one customer in one shop's stored data, gathered before anything is erased."""

    shop_domain: str
    shop: Shop | None
    customer_shopify_id: int
    customer_pks: tuple[int, ...]          # the customer's row and the rows of customers merged into it
    shopify_ids: frozenset[int]            # the customer's id and those of the accounts merged into it
    emails: frozenset[str]                 # lower-cased
    order_shopify_ids: frozenset[int]      # their mirrored orders plus any Shopify named
    cart_tokens: frozenset[str]            # carts their checkouts and orders came from
    checkout_tokens: frozenset[str]        # their checkouts, guest ones included


def register_export_section(name: str, fn: Callable[..., list]) -> None:
    """Add a section to every customer data export: fn(*, keys) -> the records about the customer."""
    _export_sections[name] = fn


def customer_keys(*, shop_domain: str, customer_shopify_id: int, emails: Iterable[str] = (),
                  order_shopify_ids: Iterable[int] = ()) -> CustomerKeys:
    """Widen what Shopify told us (id, email, orders) with what the mirror knows of the same person."""
    shop = Shop.objects.filter(domain=shop_domain).first()
    emails = {e.strip().lower() for e in emails if e and e.strip()}
    named_orders = set(order_shopify_ids)
    if shop is None:
        return CustomerKeys(shop_domain=shop_domain, shop=None, customer_shopify_id=customer_shopify_id,
                            customer_pks=(), shopify_ids=frozenset({customer_shopify_id}), emails=frozenset(emails),
                            order_shopify_ids=frozenset(named_orders), cart_tokens=frozenset(),
                            checkout_tokens=frozenset())
    customers = Customer.objects.filter(shop=shop).filter(
        Q(shopify_id=customer_shopify_id) | Q(merged_into_id=customer_shopify_id))
    customer_pks = tuple(sorted(customers.values_list("pk", flat=True)))
    # A merged-away account's row was blanked by the merge, so its deliveries are found by its id alone.
    shopify_ids = frozenset({customer_shopify_id, *customers.values_list("shopify_id", flat=True)})
    emails |= {e for e in customers.values_list("email", flat=True) if e}
    person = _person_q(customer_pks=customer_pks, emails=emails)
    orders = Order.objects.filter(shop=shop).filter(person | Q(shopify_id__in=named_orders))
    checkouts = Checkout.objects.filter(shop=shop).filter(person)
    cart_tokens = set(orders.values_list("cart_token", flat=True)) | set(checkouts.values_list("cart_token", flat=True))
    # Kept by token too: once their emails are blanked, guest checkouts can no longer be found by email.
    checkout_tokens = frozenset(checkouts.values_list("token", flat=True))
    return CustomerKeys(
        shop_domain=shop_domain, shop=shop, customer_shopify_id=customer_shopify_id, customer_pks=customer_pks,
        shopify_ids=shopify_ids, emails=frozenset(emails),
        order_shopify_ids=frozenset(named_orders | set(orders.values_list("shopify_id", flat=True))),
        cart_tokens=frozenset(t for t in cart_tokens if t), checkout_tokens=checkout_tokens,
    )


def _person_q(*, customer_pks: Iterable[int], emails: Iterable[str]) -> Q:
    """Rows linked to the customer, or guest rows carrying their email."""
    q = Q(customer_id__in=list(customer_pks))
    emails = list(emails)
    return q | Q(email__in=emails) if emails else q


def customer_orders(*, keys: CustomerKeys) -> QuerySet[Order]:
    """The customer's orders and any order Shopify named for them."""
    if keys.shop is None:
        return Order.objects.none()
    return Order.objects.filter(shop=keys.shop).filter(
        _person_q(customer_pks=keys.customer_pks, emails=keys.emails) | Q(shopify_id__in=keys.order_shopify_ids))


def customer_checkouts(*, keys: CustomerKeys) -> QuerySet[Checkout]:
    if keys.shop is None:
        return Checkout.objects.none()
    return Checkout.objects.filter(shop=keys.shop).filter(
        _person_q(customer_pks=keys.customer_pks, emails=keys.emails) | Q(token__in=keys.checkout_tokens))


def customer_carts(*, keys: CustomerKeys) -> QuerySet[Cart]:
    """Carts are anonymous until a checkout or order of this customer names their token."""
    if keys.shop is None or not keys.cart_tokens:
        return Cart.objects.none()
    return Cart.objects.filter(shop=keys.shop, token__in=keys.cart_tokens)


# -- retention -------------------------------------------------------------------------------------
PERSONAL_CUSTOMER_FIELDS = ("email", "phone", "first_name", "last_name")


def customers_inactive(*, shop: Shop, before: dt.datetime) -> QuerySet[Customer]:
    """The shop's customers with no order, no checkout and no profile change since `before` who
    still have personal data in the store copy (on their own row, or an email on an order or a
    checkout of theirs); accounts merged away are reached through the one they were merged into."""
    person = Q()
    for name in PERSONAL_CUSTOMER_FIELDS:
        person |= ~Q(**{name: ""})
    mine = {"customer": OuterRef("pk")}
    person |= Exists(Order.objects.filter(**mine).exclude(email="")) | Exists(
        Checkout.objects.filter(**mine).exclude(email=""))
    quiet = ((Q(updated_at__isnull=True) | Q(updated_at__lt=before))
             & (Q(created_at__isnull=True) | Q(created_at__lt=before)))
    return (Customer.objects.filter(shop=shop, merged_into_id__isnull=True).filter(quiet).filter(person)
            .exclude(Exists(Order.objects.filter(**mine, created_at__gte=before)))
            .exclude(Exists(Checkout.objects.filter(**mine).filter(Q(created_at__gte=before)
                                                                   | Q(updated_at__gte=before)))))


# -- the export ------------------------------------------------------------------------------------
def _clean(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in INTERNAL_COLUMNS}


def _rows(queryset: QuerySet) -> list[dict]:
    return [_clean(row) for row in queryset.values()]


def _by_order(queryset: QuerySet) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = defaultdict(list)
    for row in queryset.values():
        grouped[row["order_id"]].append(_clean(row))
    return grouped


def customer_data_export(*, keys: CustomerKeys, orders_requested: Iterable[int] = ()) -> dict:
    """Everything stored about the customer, as JSON-ready data; orders limited to `orders_requested` if any."""
    requested = set(orders_requested)
    customer = None
    orders: list[dict] = []
    segments: dict = {"memberships": [], "history": [], "tag_changes": [], "flow_triggers": []}
    if keys.shop is not None:
        customer = next(iter(_rows(Customer.objects.filter(shop=keys.shop, shopify_id=keys.customer_shopify_id))),
                        None)
        segments = _segment_records(keys)
        order_rows = list((Order.objects.filter(shop=keys.shop, shopify_id__in=requested) if requested
                           else customer_orders(keys=keys)).order_by("created_at", "shopify_id").values())
        pks = [row["id"] for row in order_rows]
        items = _by_order(LineItem.objects.filter(order_id__in=pks).order_by("shopify_id"))
        refunds = _by_order(Refund.objects.filter(order_id__in=pks).order_by("created_at", "shopify_id"))
        orders = [{**_clean(row), "line_items": items[row["id"]], "refunds": refunds[row["id"]]}
                  for row in order_rows]
    export = {
        "format": EXPORT_FORMAT,
        "shop_domain": keys.shop_domain,
        "customer_id": keys.customer_shopify_id,
        "generated_at": timezone.now(),
        "customer": customer,
        "orders": orders,
        "checkouts": _rows(customer_checkouts(keys=keys).order_by("created_at", "token")),
        "carts": _rows(customer_carts(keys=keys).order_by("created_at", "token")),
        "segments": segments,
        **{name: section(keys=keys) for name, section in _export_sections.items()},
    }
    # Decimals and datetimes become strings once, here, so the export is stored and served as is.
    return json.loads(json.dumps(export, cls=DjangoJSONEncoder))


def _segment_records(keys: CustomerKeys) -> dict:
    """What the app decided about the customer: segments they are in, their entries and exits, every
    tag written to or removed from them in Shopify (the tag audit) and the Flow triggers about them."""
    pks = list(Customer.objects.filter(shop=keys.shop, shopify_id=keys.customer_shopify_id).values_list("pk", flat=True))
    memberships = [{"segment": m.segment.name, "tag": m.segment.tag, "holdout": m.holdout, "since": m.entered_at}
                   for m in Membership.objects.filter(customer_id__in=pks).select_related("segment__shop")
                   .order_by("entered_at")]
    history = [{"segment": e.segment.name, "entered": e.entered, "holdout": e.holdout, "at": e.at,
                "trigger": e.trigger} for e in MembershipEvent.objects.filter(customer_id__in=pks)
               .select_related("segment").order_by("at", "pk")]
    tag_changes = [{"tag": a.tag, "add": a.add, "result": a.result, "source": a.source, "at": a.at}
                   for a in TagAudit.objects.filter(shop=keys.shop, customer_shopify_id=keys.customer_shopify_id)
                   .order_by("at", "pk")]
    flow = [{"segment": f.segment.name, "entered": f.entered, "result": f.result or "queued", "at": f.created_at}
            for f in FlowTrigger.objects.filter(customer_id__in=pks).select_related("segment").order_by("pk")]
    return {"memberships": memberships, "history": history, "tag_changes": tag_changes, "flow_triggers": flow}


def export_counts(*, export: dict) -> dict[str, int]:
    orders = export["orders"]
    return {"customer": int(export["customer"] is not None), "orders": len(orders),
            "line_items": sum(len(o["line_items"]) for o in orders), "refunds": sum(len(o["refunds"]) for o in orders),
            "checkouts": len(export["checkouts"]), "carts": len(export["carts"]),
            **{name: len(export.get(name, [])) for name in _export_sections},
            "segment_memberships": len(export.get("segments", {}).get("memberships", [])),
            "tag_changes": len(export.get("segments", {}).get("tag_changes", []))}


# -- the request log -------------------------------------------------------------------------------
def compliance_requests_for_shop(*, shop_domain: str) -> QuerySet[ComplianceRequest]:
    """The shop's requests, newest first, without the (possibly large) exports."""
    return (ComplianceRequest.objects.filter(shop_domain=shop_domain).defer("export")
            .order_by("-received_at", "-pk"))


def compliance_export_for_shop(*, shop_domain: str, pk: int) -> ComplianceRequest | None:
    """A data request of this shop whose export is still held (erased by a later redact)."""
    return ComplianceRequest.objects.filter(shop_domain=shop_domain, pk=pk, kind=ComplianceKind.DATA_REQUEST,
                                            export__isnull=False).first()


def compliance_exportable_pks(*, shop_domain: str) -> set[int]:
    return set(ComplianceRequest.objects.filter(shop_domain=shop_domain, kind=ComplianceKind.DATA_REQUEST,
                                                export__isnull=False).values_list("pk", flat=True))
