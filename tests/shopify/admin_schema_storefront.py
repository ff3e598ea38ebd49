"""What the app sends with its storefront documents (offers as discounts, the experiences metafield),
built by the app's own code where it builds them; merged into test_admin_schema's VARIABLES."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from segments.experiences import offers, publish
from segments.experiences.models import Playbook
from segments.experiences.presets import experience_clean
from segments.membership.models import Segment
from segments.shops.models import Shop

NATIVE_SEGMENT, DISCOUNT = "gid://shopify/Segment/520093", "gid://shopify/DiscountCodeNode/1057371"


def _offer_inputs(kind: str) -> list[dict[str, Any]]:
    """The discount inputs the app writes for a playbook's offers of `kind`, built by offers itself."""
    segment = Segment(shop=Shop(currency="USD"), handle="cart-abandoners", name="Cart abandoners", status="active")
    book = Playbook(segment=segment, experience=experience_clean({"preset": "cart_value"}), offer_percent=15)
    return [{"discount": offers._discount_input(spec, NATIVE_SEGMENT)}
            for spec in offers.offers_wanted(playbook=book).values() if spec["kind"] == kind]


STOREFRONT_VARIABLES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "segments.experiences.offers:SEGMENT_CREATE": lambda: [{"name": "shopseg: VIP",
                                                            "query": offers.native_query("seg:vip")}],
    "segments.experiences.offers:SEGMENT_UPDATE": lambda: [{"id": NATIVE_SEGMENT, "name": "shopseg: VIP",
                                                            "query": offers.native_query("seg:vip")}],
    "segments.experiences.offers:SEGMENT_DELETE": lambda: [{"id": NATIVE_SEGMENT}],
    "segments.experiences.offers:BASIC_CREATE": lambda: _offer_inputs("percentage"),
    "segments.experiences.offers:BASIC_UPDATE": lambda: [{"id": DISCOUNT, **v} for v in _offer_inputs("percentage")],
    "segments.experiences.offers:SHIPPING_CREATE": lambda: _offer_inputs("free_shipping"),
    "segments.experiences.offers:SHIPPING_UPDATE": lambda: [{"id": DISCOUNT, **v}
                                                            for v in _offer_inputs("free_shipping")],
    "segments.experiences.offers:DISCOUNT_DELETE": lambda: [{"id": DISCOUNT}],
    "segments.experiences.offers:BY_CODE": lambda: [{"code": "CART-ABANDONERS-FREESHIP"}],
    "segments.experiences.publish:WRITE": lambda: [{"metafields": [{
        "ownerId": "gid://shopify/AppInstallation/1043987", "namespace": publish.NAMESPACE, "key": publish.KEY,
        "type": publish.TYPE, "value": json.dumps({"experiences": {"seg:vip": {"preset": "vip_hero"}}})}]}],
}
