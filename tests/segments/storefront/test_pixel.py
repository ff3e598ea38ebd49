"""The shop's web pixel is activated at install through devstore's Admin API (webPixelCreate), with
the settings the extension declares: where to send events and the shop's ingest key. Activating
again updates it; a pixel left from an earlier installation is found and updated; without the
scopes nothing is sent to Shopify."""
from __future__ import annotations

import pytest
from django.conf import settings

from devstore.web_pixels import web_pixel_settings
from segments.shops.models import Shop
from segments.storefront.models import Pixel
from segments.storefront.pixel import pixel_activate

pytestmark = pytest.mark.django_db


def stored(devstore, shop: Shop) -> dict | None:
    return web_pixel_settings(devstore.store, shop.domain, settings.SHOPIFY_API_KEY)


def test_install_activates_the_pixel_with_the_shops_ingest_key(devstore, installed_shop):
    pixel = Pixel.objects.get(shop=installed_shop)
    assert pixel.web_pixel_id.startswith("gid://shopify/WebPixel/") and pixel.activated_at is not None
    assert stored(devstore, installed_shop) == {"ingestUrl": f"{settings.SHOPSEG_APP_URL}/storefront/events",
                                                "ingestKey": pixel.ingest_key}


def test_activating_again_updates_the_same_pixel(devstore, installed_shop):
    before = Pixel.objects.get(shop=installed_shop)
    Pixel.objects.filter(pk=before.pk).update(ingest_key="a-new-key")
    assert pixel_activate(shop_id=installed_shop.pk) == "updated"
    assert Pixel.objects.get(pk=before.pk).web_pixel_id == before.web_pixel_id
    assert stored(devstore, installed_shop)["ingestKey"] == "a-new-key"


def test_a_pixel_from_an_earlier_installation_is_found_and_updated(devstore, installed_shop):
    Pixel.objects.filter(shop=installed_shop).update(web_pixel_id="", ingest_key="after-reinstall")
    assert pixel_activate(shop_id=installed_shop.pk) == "updated"
    assert stored(devstore, installed_shop)["ingestKey"] == "after-reinstall"
    assert Pixel.objects.get(shop=installed_shop).web_pixel_id.startswith("gid://shopify/WebPixel/")


def test_without_the_pixel_scopes_nothing_is_sent(devstore, installed_shop):
    devstore.store.conn().execute("DELETE FROM web_pixels")
    Shop.objects.filter(pk=installed_shop.pk).update(scopes="read_customers,read_orders")
    Pixel.objects.filter(shop=installed_shop).update(web_pixel_id="")
    assert pixel_activate(shop_id=installed_shop.pk) == "missing_scopes"
    assert stored(devstore, installed_shop) is None
    assert Pixel.objects.get(shop=installed_shop).activation_error == "missing scopes: write_pixels, read_customer_events"
