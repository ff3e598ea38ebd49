"""The shop's web pixel: its row and ingest key, and its activation in Shopify (`webPixelCreate`, or
`webPixelUpdate` when the shop has it already) with the settings its extension declares
(extensions/shopseg-pixel/shopify.extension.toml): where to send events and the key to send."""
from __future__ import annotations

import json
import logging

from django.conf import settings
from django.utils import timezone

from segments.shops.graphql import shop_graphql
from segments.shops.models import Shop
from segments.storefront.models import Pixel

log = logging.getLogger(__name__)
INGEST_PATH = "/storefront/events"
PIXEL_SCOPES = ("write_pixels", "read_customer_events")

PIXEL_QUERY = "query Pixel { webPixel { id settings } }"
PIXEL_CREATE = """
mutation PixelCreate($webPixel: WebPixelInput!) {
  webPixelCreate(webPixel: $webPixel) { userErrors { code field message } webPixel { id settings } }
}
"""
PIXEL_UPDATE = """
mutation PixelUpdate($id: ID!, $webPixel: WebPixelInput!) {
  webPixelUpdate(id: $id, webPixel: $webPixel) { userErrors { code field message } webPixel { id settings } }
}
"""


def pixel_ensure(*, shop: Shop) -> Pixel:
    """The shop's pixel row (made with a fresh ingest key the first time)."""
    pixel, _ = Pixel.objects.get_or_create(shop=shop)
    return pixel


def pixel_settings(pixel: Pixel) -> dict[str, str]:
    """The settings the extension declares, as Shopify stores them: strings."""
    return {"ingestUrl": settings.SHOPSEG_APP_URL.rstrip("/") + INGEST_PATH, "ingestKey": pixel.ingest_key}


def pixel_activate(*, shop_id: int) -> str:
    """Make the shop's pixel row and activate the pixel in Shopify with its settings: an update of the
    pixel we know, else a create (the shop's pixel found and updated when it has one already).
    Returns created, updated or missing_scopes (the merchant has not granted them; the pixel is
    activated once they do)."""
    shop = Shop.objects.get(pk=shop_id)
    pixel = pixel_ensure(shop=shop)
    missing = [scope for scope in PIXEL_SCOPES if not shop.has_scope(scope)]
    if missing:
        Pixel.objects.filter(pk=pixel.pk).update(activation_error=f"missing scopes: {', '.join(missing)}")
        return "missing_scopes"
    body = {"webPixel": {"settings": json.dumps(pixel_settings(pixel))}}
    found, codes, outcome = None, set(), "updated"
    if pixel.web_pixel_id:
        found, codes = _mutate(shop_id, PIXEL_UPDATE, "webPixelUpdate", {"id": pixel.web_pixel_id, **body})
    if found is None and codes <= {"NOT_FOUND"}:
        outcome = "created"
        found, codes = _mutate(shop_id, PIXEL_CREATE, "webPixelCreate", body)
        if codes == {"TAKEN"}:       # the shop has our pixel from an earlier installation
            existing = shop_graphql(shop_id=shop_id, query=PIXEL_QUERY).data["webPixel"]
            outcome = "updated"
            found, codes = _mutate(shop_id, PIXEL_UPDATE, "webPixelUpdate", {"id": existing["id"], **body})
    if found is None:
        error = f"Shopify refused the pixel: {', '.join(sorted(codes))}"
        Pixel.objects.filter(pk=pixel.pk).update(activation_error=error)
        raise PixelActivationError(error)
    Pixel.objects.filter(pk=pixel.pk).update(web_pixel_id=found["id"], activated_at=timezone.now(),
                                             activation_error="")
    log.info("web pixel for shop %s: %s", shop.domain, outcome)
    return outcome


class PixelActivationError(RuntimeError):
    pass


def _mutate(shop_id: int, document: str, field: str, variables: dict) -> tuple[dict | None, set[str]]:
    """The pixel the mutation answered with, or None and the codes of its user errors."""
    payload = shop_graphql(shop_id=shop_id, query=document, variables=variables).data[field]
    if payload["userErrors"]:
        return None, {e.get("code") or "UNKNOWN" for e in payload["userErrors"]}
    return payload["webPixel"], set()
