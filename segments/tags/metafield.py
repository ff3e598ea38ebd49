"""The optional JSON customer metafield (Settings: "also write a metafield"): the customer's segments
and since when, for themes that would rather read JSON than tags.

The metafield lives in the app-owned namespace `$app:shopseg` (Shopify expands it to
`app--<app id>--shopseg`), key `segments`, type `json`, under a definition the app creates once per
shop with storefront access PUBLIC_READ, without which theme Liquid could not read an app-owned
metafield: `customer.metafields['app--<app id>--shopseg'].segments.value`. The value is a list, ordered by handle, of `{"segment": handle, "tag": tag, "since": ISO
time}` for the segments the customer is a treated member of (holdout members are left out, as for
tags). It is written by the tag sync in the same run as the customer's tags: after a customer's tag
changes are answered, and for every customer a resync queues (turning the setting on queues them
all). `metafieldsSet` takes 25 customers a call (10 points), so it adds at most 4% to the cost of a
sync. A metafield that fails to write is logged and left to the next change or resync; tags, the
contract themes rely on, never wait for it.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable

from segments.membership.models import Membership, SegmentStatus
from segments.shops.models import Shop

log = logging.getLogger(__name__)

NAMESPACE = "$app:shopseg"
KEY = "segments"
TYPE = "json"
PER_CALL = 25            # Shopify's limit of metafieldsSet inputs
CALL_COST = 10

DEFINITION = """mutation Define($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) { createdDefinition { id } userErrors { field message code } }
}"""
SET = """mutation Write($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } }
}"""

_defined: set[int] = set()    # shops whose definition this process has seen created or present


def metafield_values(*, shop: Shop, customer_ids: Iterable[int]) -> dict[int, str]:
    """{customer id: the JSON value} for `customer_ids` (an empty list for a customer in none)."""
    ids = sorted(set(customer_ids))
    found: dict[int, list[dict]] = defaultdict(list)
    rows = (Membership.objects.filter(shop=shop, customer_id__in=ids, holdout=False,
                                      segment__status=SegmentStatus.ACTIVE)
            .order_by("segment__handle").values_list("customer_id", "segment__handle", "entered_at"))
    for customer_id, handle, entered_at in rows:
        found[customer_id].append({"segment": handle, "tag": f"{shop.tag_prefix}{handle}",
                                   "since": entered_at.isoformat()})
    return {pk: json.dumps(found.get(pk, []), separators=(",", ":")) for pk in ids}


def _ensure_definition(shop: Shop, sender) -> None:
    if shop.pk in _defined:
        return
    result = sender.call(DEFINITION, {"definition": {
        "name": "shopseg segments", "namespace": NAMESPACE, "key": KEY, "type": TYPE, "ownerType": "CUSTOMER",
        "description": "The customer's shopseg segments and since when (written by shopseg).",
        "access": {"storefront": "PUBLIC_READ"}}}, CALL_COST)
    errors = result.data["metafieldDefinitionCreate"]["userErrors"] or []
    if any(e.get("code") != "TAKEN" and "taken" not in str(e.get("message", "")).lower()
           and "already" not in str(e.get("message", "")).lower() for e in errors):
        log.warning("metafield definition for shop %s refused: %s", shop.pk, errors)
        return
    _defined.add(shop.pk)


def metafields_write(*, shop: Shop, sender, customers: dict[int, int]) -> dict[str, int]:
    """Write the metafield of `customers` ({customer id: Shopify id}); returns {written, failed}."""
    counts = {"metafields_written": 0, "metafields_failed": 0}
    if not customers:
        return counts
    _ensure_definition(shop, sender)
    values = metafield_values(shop=shop, customer_ids=customers)
    ids = sorted(values)
    for start in range(0, len(ids), PER_CALL):
        chunk = ids[start:start + PER_CALL]
        for attempt in range(2):
            inputs = [{"ownerId": f"gid://shopify/Customer/{customers[pk]}", "namespace": NAMESPACE, "key": KEY,
                       "type": TYPE, "value": values[pk]} for pk in chunk]
            result = sender.call(SET, {"metafields": inputs}, CALL_COST)
            errors = (result.data.get("metafieldsSet") or {}).get("userErrors") or []
            if not errors:
                counts["metafields_written"] += len(chunk)
                break
            # metafieldsSet is atomic: nothing was written. Drop the inputs it named (a customer
            # deleted meanwhile) and send the rest once more.
            bad = {int(e["field"][1]) for e in errors
                   if len(e.get("field") or []) > 1 and str(e["field"][1]).isdigit()}
            log.warning("metafields for shop %s refused: %s", shop.pk, [e.get("message") for e in errors][:3])
            counts["metafields_failed"] += len(bad) if bad and attempt == 0 else len(chunk)
            chunk = [pk for n, pk in enumerate(chunk) if n not in bad]
            if not bad or not chunk:
                break
    return counts
