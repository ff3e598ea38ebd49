"""Deliveries in another API version than the app's pinned one, or that Shopify marks deprecated
(X-Shopify-API-Deprecated-Reason), are shown to the operator: a warning in the worker's log (no
payload, nothing personal), and counts with the last time seen in `manage.py mirror_status`."""
import json
import logging
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from segments.shops.models import Shop
from shopseg.shopify.signatures import webhook_hmac
from webhooks import services
from webhooks.models import WebhookEvent
from webhooks.services import webhook_events_drain

pytestmark = pytest.mark.django_db
REASON = "This API version is unsupported; deliveries fall forward to 2026-01."


@pytest.fixture
def shop(monkeypatch):
    monkeypatch.setattr(services, "_API_WARNED", {})    # what this process already warned about
    return Shop.objects.create(domain="versions.myshopify.com", access_token="shpat_x", scopes="read_customers")


def post(client, settings, shop, *, version: str, reason: str | None = None, topic="customers/update"):
    body = json.dumps({"id": 7, "email": "private.person@example.com", "updated_at": "2026-11-20T10:00:00Z",
                       "created_at": "2026-11-20T10:00:00Z"}).encode()
    headers = {"HTTP_X_SHOPIFY_TOPIC": topic, "HTTP_X_SHOPIFY_SHOP_DOMAIN": shop.domain,
               "HTTP_X_SHOPIFY_WEBHOOK_ID": str(uuid.uuid4()), "HTTP_X_SHOPIFY_API_VERSION": version,
               "HTTP_X_SHOPIFY_TRIGGERED_AT": "2026-11-20T10:00:00Z",
               "HTTP_X_SHOPIFY_HMAC_SHA256": webhook_hmac(body, settings.SHOPIFY_API_SECRET)}
    if reason is not None:
        headers["HTTP_X_SHOPIFY_API_DEPRECATED_REASON"] = reason
    response = client.post("/webhooks/shopify", data=body, content_type="application/json", **headers)
    assert response.status_code == 200


def status(shop) -> dict:
    out = StringIO()
    call_command("mirror_status", shop=shop.domain, stdout=out)
    return json.loads(out.getvalue())[0]["webhook_api"]


def test_deliveries_in_the_pinned_version_raise_nothing(client, settings, shop, caplog):
    settings.SHOPIFY_API_VERSION = "2026-10"
    post(client, settings, shop, version="2026-10")
    with caplog.at_level(logging.WARNING, logger="webhooks.services"):
        assert webhook_events_drain() == 1
    assert [r for r in caplog.records if "API" in r.getMessage()] == []
    assert status(shop) == {"pinned": "2026-10", "other_version": 0, "other_versions": [],
                            "other_version_last_seen": None, "deprecated": 0, "deprecated_reason": "",
                            "deprecated_last_seen": None}


def test_another_version_and_a_deprecation_are_logged_and_counted(client, settings, shop, caplog):
    settings.SHOPIFY_API_VERSION = "2026-10"
    post(client, settings, shop, version="2026-07")
    post(client, settings, shop, version="2026-01", reason=REASON)
    post(client, settings, shop, version="2026-01", reason=REASON)
    with caplog.at_level(logging.WARNING, logger="webhooks.services"):
        assert webhook_events_drain() == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2026-07" in w and "2026-10" in w and shop.domain in w and "customers/update" in w for w in warnings)
    assert any(REASON in w for w in warnings)
    assert not any("private.person" in w or "example.com" in w for w in warnings)   # no payload, nobody's data
    assert len(warnings) == 2          # once per shop, version and reason, not once per delivery
    last = WebhookEvent.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    assert status(shop) == {"pinned": "2026-10", "other_version": 3, "other_versions": ["2026-01", "2026-07"],
                            "other_version_last_seen": last.isoformat(), "deprecated": 2,
                            "deprecated_reason": REASON, "deprecated_last_seen": last.isoformat()}


def test_a_delivery_without_the_version_header_is_not_counted(client, settings, shop):
    post(client, settings, shop, version="")
    assert status(shop)["other_version"] == 0


def test_the_deprecation_header_is_read_and_kept_short():
    from webhooks.recording import delivery_parse

    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "w", "X-Shopify-Shop-Domain":
               "a.myshopify.com", "X-Shopify-API-Version": "2026-01", "X-Shopify-API-Deprecated-Reason": "x" * 400}
    delivery = delivery_parse(headers=headers, body=b"{}")
    assert (delivery.api_version, delivery.deprecated_reason) == ("2026-01", "x" * 255)
