"""Offers that are real discounts: a playbook's offers become Shopify discount codes limited to a native
Shopify customer segment that mirrors the segment's tag, created, changed and deleted with the playbook.

Why a native segment and not the customers' ids: Shopify keeps a segment's members current as tags
change (`customer_tags CONTAINS 'seg:vip'`), so eligibility follows membership without the app
rewriting the discount; held-out members carry no tag, so they are never eligible.

What a playbook wants (offers_wanted) is derived from it; what Shopify holds is kept in Offer and
NativeSegment rows. offers_write makes Shopify match, one step at a time, each step saved as soon as
Shopify answers, so a run cut short resumes where it stopped. A discount whose create answered but
was not saved is found again by its code, never made twice.
"""
from __future__ import annotations

import logging
from typing import Any

from segments.experiences.models import NativeSegment, Offer, OfferState, Playbook
from segments.membership.models import Segment, SegmentStatus
from segments.shops.graphql import ShopSender
from segments.shops.models import Shop

log = logging.getLogger(__name__)

OFFER_KEYS = ("cart_free_shipping", "cart_percent", "members_percent")

SEGMENT_CREATE = """mutation MirrorSegment($name: String!, $query: String!) {
  segmentCreate(name: $name, query: $query) { segment { id } userErrors { field message } }
}"""
SEGMENT_UPDATE = """mutation MirrorSegmentUpdate($id: ID!, $name: String!, $query: String!) {
  segmentUpdate(id: $id, name: $name, query: $query) { segment { id } userErrors { field message } }
}"""
SEGMENT_DELETE = """mutation MirrorSegmentDelete($id: ID!) {
  segmentDelete(id: $id) { deletedSegmentId userErrors { field message } }
}"""
BASIC_CREATE = """mutation OfferCreate($discount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $discount) { codeDiscountNode { id } userErrors { field code message } }
}"""
BASIC_UPDATE = """mutation OfferUpdate($id: ID!, $discount: DiscountCodeBasicInput!) {
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $discount) { codeDiscountNode { id } userErrors { field code message } }
}"""
SHIPPING_CREATE = """mutation OfferShippingCreate($discount: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $discount) { codeDiscountNode { id } userErrors { field code message } }
}"""
SHIPPING_UPDATE = """mutation OfferShippingUpdate($id: ID!, $discount: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingUpdate(id: $id, freeShippingCodeDiscount: $discount) { codeDiscountNode { id } userErrors { field code message } }
}"""
DISCOUNT_DELETE = """mutation OfferDelete($id: ID!) {
  discountCodeDelete(id: $id) { deletedCodeDiscountId userErrors { field code message } }
}"""
BY_CODE = """query OfferByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id codeDiscount { ... on DiscountCodeBasic { title } ... on DiscountCodeFreeShipping { title } }
  }
}"""


def offers_wanted(*, playbook: Playbook) -> dict[str, dict[str, Any]]:
    """{offer key: spec} the playbook wants for its segment's members; none once the segment is archived."""
    segment = playbook.segment
    if segment.status == SegmentStatus.ARCHIVED:
        return {}
    stem, name = segment.handle.upper(), segment.name
    wanted: dict[str, dict[str, Any]] = {}
    experience = playbook.experience or {}
    if experience.get("preset") == "cart_value":
        threshold, percent = experience["threshold"], experience["percent"]
        wanted["cart_free_shipping"] = {"kind": "free_shipping", "percent": None, "minimum": threshold,
                                        "code": f"{stem}-FREESHIP",
                                        "title": f"{name}: free shipping from {threshold:,.2f} {segment.shop.currency}"}
        wanted["cart_percent"] = {"kind": "percentage", "percent": percent, "minimum": None,
                                  "code": f"{stem}-{percent}OFF", "title": f"{name}: {percent}% off"}
    if playbook.offer_percent:
        wanted["members_percent"] = {"kind": "percentage", "percent": playbook.offer_percent, "minimum": None,
                                     "code": f"{stem}-MEMBERS", "title": f"{name}: {playbook.offer_percent}% off for members"}
    return wanted


def shop_offers_wanted(*, shop: Shop) -> dict[tuple[int, str], dict[str, Any]]:
    return {(book.segment_id, key): spec
            for book in Playbook.objects.filter(shop=shop).select_related("segment")
            for key, spec in offers_wanted(playbook=book).items()}


def native_query(tag: str) -> str:
    # Tags are lower-case letters, digits, dashes and colons (segments.tags.models), so no quoting is needed.
    return f"customer_tags CONTAINS '{tag}'"


class OfferWriteError(Exception):
    """Shopify refused a step that must succeed for the rest to follow (the message says which)."""


def _payload(result, field: str) -> dict[str, Any]:
    return (result.data or {}).get(field) or {}


def _errors(payload: dict[str, Any]) -> str:
    return "; ".join(e.get("message", "") for e in payload.get("userErrors") or [])[:500]


def _discount_input(spec: dict[str, Any], native_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": spec["title"][:255], "code": spec["code"],
        "context": {"customerSegments": {"add": [native_id]}},
        "combinesWith": {"orderDiscounts": False, "productDiscounts": False, "shippingDiscounts": False},
        "minimumRequirement": ({"subtotal": {"greaterThanOrEqualToSubtotal": f"{spec['minimum']:.2f}"}}
                               if spec["minimum"] else None)}
    if spec["kind"] == "free_shipping":
        body["destination"] = {"all": True}
    else:
        body["customerGets"] = {"value": {"percentage": spec["percent"] / 100}, "items": {"all": True}}
    return body


def _native_write(sender: ShopSender, shop: Shop, segment: Segment) -> NativeSegment:
    query, name = native_query(segment.tag), f"shopseg: {segment.name}"[:255]
    native = NativeSegment.objects.filter(shop=shop, segment=segment).first()
    if native is not None and (native.query, native.name) == (query, name):
        return native
    if native is None:
        payload = _payload(sender.call(SEGMENT_CREATE, {"name": name, "query": query}), "segmentCreate")
    else:
        payload = _payload(sender.call(SEGMENT_UPDATE, {"id": native.shopify_id, "name": name, "query": query}),
                           "segmentUpdate")
    if not (payload.get("segment") or {}).get("id"):
        raise OfferWriteError(f"Shopify refused the segment for {segment.tag}: {_errors(payload) or 'no segment'}")
    native = native or NativeSegment(shop=shop, segment=segment)
    native.shopify_id, native.query, native.name = payload["segment"]["id"], query, name
    native.save()
    return native


def _offer_write(sender: ShopSender, offer: Offer, spec: dict[str, Any], native: NativeSegment) -> None:
    shipping = spec["kind"] == "free_shipping"
    variables = {"discount": _discount_input(spec, native.shopify_id)}
    if not offer.discount_id:
        # A create that answered but was not saved left it in Shopify: adopt it, if it is ours (its title);
        # a merchant's own discount with the code is left alone, and ours is refused as a duplicate.
        found = (sender.call(BY_CODE, {"code": spec["code"]}).data or {}).get("codeDiscountNodeByCode") or {}
        if (found.get("codeDiscount") or {}).get("title") == spec["title"][:255]:
            offer.discount_id = found["id"]
    if offer.discount_id:
        variables["id"] = offer.discount_id
        if shipping:
            payload = _payload(sender.call(SHIPPING_UPDATE, variables), "discountCodeFreeShippingUpdate")
        else:
            payload = _payload(sender.call(BASIC_UPDATE, variables), "discountCodeBasicUpdate")
    elif shipping:
        payload = _payload(sender.call(SHIPPING_CREATE, variables), "discountCodeFreeShippingCreate")
    else:
        payload = _payload(sender.call(BASIC_CREATE, variables), "discountCodeBasicCreate")
    node = payload.get("codeDiscountNode") or {}
    if node.get("id"):
        offer.discount_id, offer.synced, offer.state, offer.error = node["id"], spec, OfferState.LIVE, ""
    else:    # the merchant sees why (e.g. the code is taken by another discount); the next change retries
        offer.state, offer.error = OfferState.REFUSED, _errors(payload) or "Shopify answered without a discount"
        offer.synced = spec
    offer.code, offer.title, offer.spec = spec["code"], spec["title"], spec
    offer.save()


def _offer_end(sender: ShopSender, offer: Offer) -> None:
    if offer.discount_id:
        payload = _payload(sender.call(DISCOUNT_DELETE, {"id": offer.discount_id}), "discountCodeDelete")
        if payload.get("userErrors") and not payload.get("deletedCodeDiscountId"):
            log.info("offer %s: Shopify did not delete discount (%s); treated as gone", offer.pk, _errors(payload))
    offer.discount_id, offer.synced, offer.state, offer.error = "", None, OfferState.ENDED, ""
    offer.save()


def offers_write(sender: ShopSender, shop: Shop) -> None:
    """Make the shop's discounts and native segments in Shopify what its playbooks want."""
    wanted = shop_offers_wanted(shop=shop)
    have = {(o.segment_id, o.key): o for o in Offer.objects.filter(shop=shop)}
    natives: dict[int, NativeSegment] = {}
    for segment in Segment.objects.filter(shop=shop, pk__in={segment_id for segment_id, _ in wanted}):
        natives[segment.pk] = _native_write(sender, shop, segment)
    for (segment_id, key), spec in wanted.items():
        offer = have.get((segment_id, key)) or Offer(shop=shop, segment_id=segment_id, key=key)
        if offer.pk is None or offer.synced != spec or offer.state == OfferState.PENDING:
            _offer_write(sender, offer, spec, natives[segment_id])
    for place, offer in have.items():
        if place not in wanted and offer.state != OfferState.ENDED:
            _offer_end(sender, offer)
    for native in NativeSegment.objects.filter(shop=shop).exclude(segment_id__in=list(natives)):
        payload = _payload(sender.call(SEGMENT_DELETE, {"id": native.shopify_id}), "segmentDelete")
        if payload.get("userErrors") and not payload.get("deletedSegmentId"):
            log.info("native segment %s: Shopify did not delete it (%s); treated as gone", native.pk, _errors(payload))
        native.delete()


def segment_offer_codes(*, shop: Shop) -> dict[int, dict[str, str]]:
    """{segment id: {offer key: code}} of the offers live in Shopify, for the theme."""
    codes: dict[int, dict[str, str]] = {}
    for segment_id, key, code in Offer.objects.filter(shop=shop, state=OfferState.LIVE, segment__isnull=False
                                                      ).values_list("segment_id", "key", "code"):
        codes.setdefault(segment_id, {})[key] = code
    return codes
