"""shop/redact, payload retention, and the merchant's compliance page and API."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from segments.mirror.models import ComplianceKind, ComplianceRequest
from segments.privacy import compliance
from segments.privacy.compliance import (
    compliance_customer_redact, compliance_data_request, compliance_shop_redact, register_shop_eraser,
)
from segments.privacy.tasks import retention_purge_task
from segments.shops.models import OAuthState, Shop, ShopStatus
from tests.segments.privacy.test_compliance import (  # noqa: F401 - fixtures
    CUSTOMER, EMAIL, MIRROR, OTHER, data_request_payload, event, new_domain, other_shop, populate, populate_other,
    redact_payload, shop, shop_snapshot,
)
from webhooks.models import EventStatus, WebhookEvent
from webhooks.privacy import webhook_payloads_purge

pytestmark = pytest.mark.django_db


# -- shop/redact -----------------------------------------------------------------------------------
def uninstalled(shop: Shop) -> Shop:
    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.UNINSTALLED, access_token=None, refresh_token=None)
    return shop


def test_shop_redact_erases_everything_of_the_shop(shop, other_shop):
    populate(uninstalled(shop))
    populate_other(shop)
    OAuthState.objects.create(nonce=uuid.uuid4().hex, shop=shop.domain, browser_key_hash="x")
    compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop))
    event(shop, "customers/redact", {"customer": {"id": CUSTOMER, "email": EMAIL}})
    before_other_shop = shop_snapshot(other_shop, other_shop.domain)

    request = compliance_shop_redact(shop_domain=shop.domain, payload={"shop_id": 1, "shop_domain": shop.domain})

    assert not Shop.objects.filter(domain=shop.domain).exists()
    for model in MIRROR:
        assert not model.objects.filter(shop_id=shop.pk).exists(), model.__name__
    assert not OAuthState.objects.filter(shop=shop.domain).exists()
    # the compliance deliveries stay as the record of what was asked, without their payloads
    assert list(WebhookEvent.objects.filter(shop_domain=shop.domain).values_list("topic", "payload")) == \
        [("customers/redact", {})]
    assert list(ComplianceRequest.objects.filter(shop_domain=shop.domain, export__isnull=False)) == []
    assert request.summary["shop"] == 1 and request.summary["customer"] == 3
    assert request.summary["webhook_events"] == 12 and request.summary["compliance_exports"] == 1
    assert shop_snapshot(other_shop, other_shop.domain) == before_other_shop


def test_shop_redact_twice_finds_nothing_the_second_time(shop):
    populate(uninstalled(shop))
    compliance_shop_redact(shop_domain=shop.domain, payload={})

    second = compliance_shop_redact(shop_domain=shop.domain, payload={})

    assert second.completed_at is not None and set(second.summary.values()) == {0}
    assert ComplianceRequest.objects.filter(shop_domain=shop.domain, kind=ComplianceKind.SHOP_REDACT).count() == 2


def test_shop_redact_leaves_a_reinstalled_shop_alone(shop):
    populate(shop)
    before = shop_snapshot(shop, shop.domain)

    request = compliance_shop_redact(shop_domain=shop.domain, payload={})

    assert Shop.objects.filter(pk=shop.pk, status=ShopStatus.INSTALLED).exists()
    assert shop_snapshot(shop, shop.domain) == before
    assert request.summary == {"skipped_installed": 1} and request.completed_at is not None


def test_registered_shop_erasers_run(shop, monkeypatch):
    uninstalled(shop)
    monkeypatch.setattr(compliance, "_shop_erasers", list(compliance._shop_erasers))
    seen = []
    register_shop_eraser(lambda *, erasure: seen.append(erasure) or {"tag_ledger": 7})

    request = compliance_shop_redact(shop_domain=shop.domain, payload={})

    assert [(e.shop_domain, e.shop.pk) for e in seen] == [(shop.domain, shop.pk)]
    assert request.summary["tag_ledger"] == 7


# -- retention ---------------------------------------------------------------------------------------
def test_retention_blanks_old_payloads_by_each_shops_setting(shop):
    now = timezone.now()
    short = Shop.objects.create(domain=new_domain(), payload_retention_days=7)
    old_default = event(shop, "orders/create", {"id": 1}, received_at=now - dt.timedelta(days=31))
    young_default = event(shop, "orders/create", {"id": 2}, received_at=now - dt.timedelta(days=29))
    old_short = event(short, "orders/create", {"id": 3}, received_at=now - dt.timedelta(days=8))
    young_short = event(short, "orders/create", {"id": 4}, received_at=now - dt.timedelta(days=6))
    unknown_old = event(new_domain(), "orders/create", {"id": 5}, received_at=now - dt.timedelta(days=31))
    unknown_young = event(new_domain(), "orders/create", {"id": 6}, received_at=now - dt.timedelta(days=29))
    failed_old = event(shop, "orders/create", {"id": 7}, status=EventStatus.FAILED,
                       received_at=now - dt.timedelta(days=40))
    pending_old = event(shop, "orders/create", {"id": 8}, status=EventStatus.PENDING,
                        received_at=now - dt.timedelta(days=40))

    assert webhook_payloads_purge(now=now) == 4

    def payload(e):
        return WebhookEvent.objects.get(pk=e.pk).payload
    assert [payload(e) for e in (old_default, old_short, unknown_old, failed_old)] == [{}, {}, {}, {}]
    assert [payload(e)["id"] for e in (young_default, young_short, unknown_young, pending_old)] == [2, 4, 6, 8]
    assert WebhookEvent.objects.count() == 8      # the delivery log stays
    assert webhook_payloads_purge(now=now) == 0


def test_retention_task_runs_the_purge(shop):
    old = event(shop, "orders/create", {"id": 1}, received_at=timezone.now() - dt.timedelta(days=31))
    assert retention_purge_task() == 1
    assert WebhookEvent.objects.get(pk=old.pk).payload == {}


# -- the merchant's page and the API -----------------------------------------------------------------
def session_token(devstore, shop_domain, api_key):
    return devstore.control("GET", f"/shops/{shop_domain}/session-token/{api_key}")["token"]


@pytest.fixture
def two_shops_requests(installed_shop):
    """A data request in the installed shop, and one in another shop (same customer id, too)."""
    populate(installed_shop)
    mine = compliance_data_request(shop_domain=installed_shop.domain, payload=data_request_payload(installed_shop))
    foreign_shop = Shop.objects.create(domain=new_domain())
    populate(foreign_shop, tag="b")
    theirs = compliance_data_request(shop_domain=foreign_shop.domain,
                                     payload=data_request_payload(foreign_shop, request_id=7777))
    compliance_customer_redact(shop_domain=installed_shop.domain, payload={"customer": {"id": OTHER}})
    return installed_shop, mine, theirs


def test_compliance_page_lists_the_shops_requests(client, devstore, settings, two_shops_requests):
    shop, mine, theirs = two_shops_requests
    token = session_token(devstore, shop.domain, settings.SHOPIFY_API_KEY)

    response = client.get("/admin/compliance/?" + urlencode({"id_token": token}))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Privacy requests" in html and "Data request" in html and "#9001" in html and str(CUSTOMER) in html
    assert f"/admin/compliance/{mine.pk}/export.json" in html
    assert "#7777" not in html and f"/admin/compliance/{theirs.pk}/" not in html
    assert html.count("<tr>") == 3           # header, the data request, the redact (no export link)
    assert EMAIL not in html


def test_export_downloads_for_its_own_shop(client, devstore, settings, two_shops_requests):
    shop, mine, _ = two_shops_requests
    token = session_token(devstore, shop.domain, settings.SHOPIFY_API_KEY)

    response = client.get(f"/admin/compliance/{mine.pk}/export.json?" + urlencode({"id_token": token}))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json" and response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"] == f'attachment; filename="customer-{CUSTOMER}-data-request-9001.json"'
    assert json.loads(response.content) == ComplianceRequest.objects.get(pk=mine.pk).export


def test_export_of_another_shop_is_404(client, devstore, settings, two_shops_requests):
    shop, _, theirs = two_shops_requests
    token = session_token(devstore, shop.domain, settings.SHOPIFY_API_KEY)

    response = client.get(f"/admin/compliance/{theirs.pk}/export.json?" + urlencode({"id_token": token}))

    assert response.status_code == 404
    assert EMAIL.encode() not in response.content and b"cart-b" not in response.content


def test_export_without_a_session_token_reveals_nothing(client, two_shops_requests):
    _, mine, _ = two_shops_requests
    response = client.get(f"/admin/compliance/{mine.pk}/export.json")
    assert response.status_code == 200 and b"segments/bounce.js" in response.content     # the bounce page
    assert EMAIL.encode() not in response.content


def test_erased_export_is_404(client, devstore, settings, two_shops_requests):
    shop, mine, _ = two_shops_requests
    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))
    token = session_token(devstore, shop.domain, settings.SHOPIFY_API_KEY)
    response = client.get(f"/admin/compliance/{mine.pk}/export.json?" + urlencode({"id_token": token}))
    assert response.status_code == 404


def test_api_lists_the_shops_requests(client, devstore, settings, two_shops_requests):
    shop, mine, _ = two_shops_requests
    token = session_token(devstore, shop.domain, settings.SHOPIFY_API_KEY)

    response = client.get("/api/compliance", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    rows = response.json()["requests"]
    assert [(r["kind"], r["customer_id"]) for r in rows] == [("customers/redact", OTHER),
                                                            ("customers/data_request", CUSTOMER)]
    assert rows[1]["export_url"] == f"/admin/compliance/{mine.pk}/export.json" and rows[0]["export_url"] is None
    assert rows[1]["counts"]["orders"] == 2 and rows[1]["request_id"] == "9001"
    assert "export" not in rows[1] and EMAIL not in response.content.decode()


def test_api_without_a_session_token_is_401(client, two_shops_requests):
    response = client.get("/api/compliance")
    assert response.status_code == 401 and b"requests" not in response.content
