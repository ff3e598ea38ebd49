"""GraphQL Admin API shapes -> mirror records: the field selections we ask for and their parsers.

The same selections serve bulk queries (whose JSONL puts nested-connection children on their own
lines, with `__parentId`, right after their parent) and paginated queries (children nested under
`edges`), so the backfill and reconciliation read identical fields.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from segments.mirror.models import Device
from segments.mirror.records import (
    CheckoutRecord, CostRecord, CustomerRecord, LineItemRecord, OrderRecord, ProductRecord, RefundRecord,
)
from segments.mirror.rest import shipping_speed

MONEY = "{ shopMoney { amount } }"
# SMS consent as smsMarketingConsent.state: API 2026-10 deprecates CustomerPhoneNumber.marketingState.
# The object costs a point per customer (reconciliation's customer page is sized for it).
CUSTOMER_FIELDS = """id firstName lastName state tags createdAt updatedAt
  defaultEmailAddress { emailAddress marketingState }
  defaultPhoneNumber { phoneNumber smsMarketingConsent { state } }"""
PRODUCT_FIELDS = "id title productType vendor tags updatedAt"
# A variant's unit cost lives on its inventory item (unitCost: MoneyV2 in the shop currency, null when
# none was entered). The backfill exports variants, one JSONL line each (no nested connection);
# reconciliation pages through the items, which are what `updated_at` searches, and their one variant.
VARIANT_COST_FIELDS = "id inventoryItem { id unitCost { amount } updatedAt }"
INVENTORY_ITEM_FIELDS = "id unitCost { amount } updatedAt variants(first: 1) { edges { node { id } } }"
LINE_ITEM_FIELDS = (f"id title quantity vendor product {{ id productType }} variant {{ id }} "
                    f"originalUnitPriceSet {MONEY} totalDiscountSet {MONEY}")


def order_fields(*, page: int | None = None) -> str:
    """Order fields with line items and shipping lines; `page` sizes nested pages (None in bulk queries)."""
    items = f"(first: {page})" if page else ""
    more = " pageInfo { hasNextPage endCursor }" if page else ""
    return f"""id name createdAt processedAt updatedAt cancelledAt test email customer {{ id }}
  displayFinancialStatus currencyCode discountCodes sourceName
  subtotalPriceSet {MONEY} totalPriceSet {MONEY} totalDiscountsSet {MONEY}
  totalShippingPriceSet {MONEY} totalRefundedSet {MONEY}
  refunds {{ id createdAt totalRefundedSet {MONEY} }}
  shippingLines{"(first: 5)" if page else ""} {{ edges {{ node {{ id title code }} }} }}
  lineItems{items} {{ edges {{ node {{ {LINE_ITEM_FIELDS} }} }}{more} }}"""


def checkout_fields(*, page: int | None = None) -> str:
    """Abandoned-checkout fields; its line items are only counted (up to `page` when paginated; None in bulk)."""
    items = f"(first: {page})" if page else ""
    return f"""id createdAt updatedAt completedAt abandonedCheckoutUrl customer {{ id }}
  totalPriceSet {MONEY}
  lineItems{items} {{ edges {{ node {{ id }} }} }}"""


# Order.sourceName values that name the device; GraphQL orders carry no clientDetails.
SOURCE_DEVICES = {"pos": Device.POS, "iphone": Device.MOBILE, "android": Device.MOBILE}


def gid_number(gid: str | None) -> int | None:
    """gid://shopify/Customer/123 -> 123."""
    if not gid:
        return None
    tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


def gid_kind(gid: str | None) -> str:
    """gid://shopify/LineItem/9 -> "LineItem"."""
    parts = (gid or "").split("/")
    return parts[3] if len(parts) > 4 else ""


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _money(bag: dict | None) -> Decimal:
    if not bag:
        return Decimal(0)
    return Decimal(str(bag["shopMoney"]["amount"]))


def _id_of(obj: dict | None) -> int | None:
    return gid_number(obj.get("id")) if obj else None


def _lower(value: str | None, default: str = "") -> str:
    return value.lower() if value else default


def edge_nodes(connection: dict | None) -> list[dict]:
    """The nodes of a paginated connection selected as `edges { node { ... } }`."""
    return [edge["node"] for edge in (connection or {}).get("edges") or [] if edge.get("node")]


def _sms_state(phone: dict) -> str | None:
    """The phone's SMS consent state: `smsMarketingConsent.state`, whose enum names a consent never
    given NEVER_SUBSCRIBED (the mirror's not_subscribed, as the deprecated flat `marketingState`
    said, which is read too)."""
    state = (phone.get("smsMarketingConsent") or {}).get("state") or phone.get("marketingState")
    return "NOT_SUBSCRIBED" if state == "NEVER_SUBSCRIBED" else state


# -- records -------------------------------------------------------------------------------------
def customer_record(node: dict) -> CustomerRecord:
    email = node.get("defaultEmailAddress") or {}
    phone = node.get("defaultPhoneNumber") or {}
    return CustomerRecord(
        shopify_id=gid_number(node["id"]), updated_at=_time(node.get("updatedAt")),
        created_at=_time(node.get("createdAt")), email=email.get("emailAddress") or "",
        phone=phone.get("phoneNumber") or "", first_name=node.get("firstName") or "",
        last_name=node.get("lastName") or "", state=_lower(node.get("state")),
        email_marketing=_lower(email.get("marketingState"), "unknown"),
        sms_marketing=_lower(_sms_state(phone), "unknown"),
        tags=list(node.get("tags") or []),
    )


def product_record(node: dict) -> ProductRecord:
    return ProductRecord(shopify_id=gid_number(node["id"]), updated_at=_time(node.get("updatedAt")),
                         title=node.get("title") or "", product_type=node.get("productType") or "",
                         vendor=node.get("vendor") or "", tags=list(node.get("tags") or []))


def _cost_record(item: dict, variant_id: int | None) -> CostRecord:
    cost = item.get("unitCost")
    return CostRecord(inventory_item_id=gid_number(item["id"]), updated_at=_time(item.get("updatedAt")),
                      unit_cost=Decimal(str(cost["amount"])) if cost else None, variant_id=variant_id)


def variant_cost_record(node: dict) -> CostRecord | None:
    """A productVariants node's cost; None for a variant without an inventory item."""
    item = node.get("inventoryItem")
    return _cost_record(item, gid_number(node.get("id"))) if item and item.get("id") else None


def inventory_item_record(node: dict) -> CostRecord:
    variants = edge_nodes(node.get("variants"))
    return _cost_record(node, _id_of(variants[0]) if variants else None)


def line_item_record(node: dict) -> LineItemRecord:
    product = node.get("product") or {}
    return LineItemRecord(
        shopify_id=gid_number(node["id"]), quantity=int(node.get("quantity") or 0),
        price=_money(node.get("originalUnitPriceSet")), total_discount=_money(node.get("totalDiscountSet")),
        product_id=_id_of(product), variant_id=_id_of(node.get("variant")), title=node.get("title") or "",
        vendor=node.get("vendor") or "", product_type=product.get("productType") or "",
    )


def order_record(node: dict, *, line_items: list[dict] | None = None,
                 shipping_lines: list[dict] | None = None) -> OrderRecord | None:
    """An order with its line items; None for a test order (the mirror keeps real sales only).

    Children come from bulk JSONL lines when given, otherwise from the node's nested connections.
    """
    if node.get("test"):
        return None
    items = line_items if line_items is not None else edge_nodes(node.get("lineItems"))
    shipping = shipping_lines if shipping_lines is not None else edge_nodes(node.get("shippingLines"))
    order_id = gid_number(node["id"])
    created = _time(node["createdAt"])
    return OrderRecord(
        shopify_id=order_id, created_at=created, updated_at=_time(node.get("updatedAt")),
        customer_shopify_id=_id_of(node.get("customer")), email=node.get("email") or "",
        name=node.get("name") or "", processed_at=_time(node.get("processedAt")),
        cancelled_at=_time(node.get("cancelledAt")), financial_status=_lower(node.get("displayFinancialStatus")),
        currency=node.get("currencyCode") or "", subtotal=_money(node.get("subtotalPriceSet")),
        total=_money(node.get("totalPriceSet")), total_discounts=_money(node.get("totalDiscountsSet")),
        total_shipping=_money(node.get("totalShippingPriceSet")),
        total_refunded=_money(node.get("totalRefundedSet")),
        discount_codes=list(node.get("discountCodes") or []), source_name=node.get("sourceName") or "",
        device=SOURCE_DEVICES.get((node.get("sourceName") or "").lower(), Device.UNKNOWN),
        shipping_method=(shipping[0].get("title") or shipping[0].get("code") or "") if shipping else "",
        shipping_speed=shipping_speed(shipping[0] if shipping else None),
        line_items=[line_item_record(item) for item in items],
        refunds=[RefundRecord(shopify_id=gid_number(r["id"]), order_shopify_id=order_id,
                              created_at=_time(r.get("createdAt")) or created, amount=_money(r.get("totalRefundedSet")))
                 for r in node.get("refunds") or []],
    )


def checkout_token(url: str | None) -> str | None:
    """The checkout token in an abandonedCheckoutUrl (…/checkouts/[ac/]{token}/recover)."""
    segments = [s for s in urlsplit(url or "").path.split("/") if s]
    if "checkouts" not in segments:
        return None
    rest = [s for s in segments[segments.index("checkouts") + 1:] if s != "ac"]
    return rest[0] if rest and rest[0] != "recover" else None


def checkout_record(node: dict, *, line_item_count: int | None = None) -> CheckoutRecord:
    """An abandoned checkout. GraphQL carries no email, cart token or device for it."""
    shopify_id = gid_number(node["id"])
    if line_item_count is None:
        line_item_count = len(edge_nodes(node.get("lineItems")))
    return CheckoutRecord(
        # Webhooks key checkouts by token; the recovery URL is where GraphQL exposes it.
        token=checkout_token(node.get("abandonedCheckoutUrl")) or str(shopify_id),
        created_at=_time(node["createdAt"]), updated_at=_time(node.get("updatedAt")), shopify_id=shopify_id,
        customer_shopify_id=_id_of(node.get("customer")), total=_money(node.get("totalPriceSet")),
        line_item_count=line_item_count, completed_at=_time(node.get("completedAt")),
    )


# -- bulk JSONL ----------------------------------------------------------------------------------
@dataclass
class JsonlGroup:
    """A root object and the child lines that followed it; `lines` is how many JSONL lines it used."""

    node: dict
    children: list[dict] = field(default_factory=list)
    lines: int = 1

    def children_of(self, kind: str) -> list[dict]:
        return [child for child in self.children if gid_kind(child.get("id")) == kind]


def jsonl_groups(lines: Iterable[bytes]) -> Iterator[JsonlGroup]:
    """Group bulk JSONL: each root line with the `__parentId` lines after it (children follow parents).

    A group is yielded once the next root line (or the end) shows it is complete, so a consumer
    that stops between groups has applied whole objects only. Blank lines count but carry nothing.
    """
    current: JsonlGroup | None = None
    pending_blank = 0
    for raw in lines:
        if not raw.strip():
            pending_blank += 1
            continue
        obj = json.loads(raw)
        if "__parentId" in obj:
            if current is None:
                raise ValueError("bulk JSONL starts with a child line")
            current.children.append(obj)
            current.lines += 1 + pending_blank
        else:
            if current is not None:
                yield current
            current = JsonlGroup(node=obj, lines=1 + pending_blank)
        pending_blank = 0
    if current is not None:
        current.lines += pending_blank
        yield current
