"""A shop with its pixel, and batches as the pixel sends them (times relative to now: date-proof)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from segments.shops.models import Shop
from segments.storefront.models import Pixel

SHOP = "pixel-shop.myshopify.com"
URL = "/storefront/events"


@pytest.fixture
def pixel(db) -> Pixel:
    shop = Shop.objects.create(domain=SHOP, iana_timezone="America/New_York")
    return Pixel.objects.create(shop=shop)


def event(name: str = "page_viewed", *, client: str = "client-1", ago: dt.timedelta = dt.timedelta(minutes=1),
          url: str = "https://pixel-shop.myshopify.com/", customer: str | None = None, seq: int = 0,
          data: dict | None = None, event_id: str | None = None, referrer: str = "") -> dict:
    return {"id": event_id or f"sh-{uuid.uuid4()}", "name": name, "clientId": client,
            "timestamp": (timezone.now() - ago).isoformat(), "seq": seq, "url": url, "referrer": referrer,
            "customerId": customer, "data": data or {}}


def batch(pixel: Pixel, events: list[dict], **overrides) -> dict:
    return {"key": pixel.ingest_key, "shop": pixel.shop.domain, "analytics": True, "events": events, **overrides}


def post(client, body, **headers):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.generic("POST", URL, raw, content_type="text/plain", **headers)


def raw_events() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT shop_id, event_id, name, visitor_id FROM segments_storefrontevent ORDER BY id")
        return cursor.fetchall()
