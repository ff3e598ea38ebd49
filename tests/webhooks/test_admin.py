"""The operator's Django admin: staff only, read-only, and "requeue failed" through the product's
own services (deliveries, tag changes, backfills)."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from segments.membership.models import TagChange
from segments.mirror.models import BackfillStatus, Customer, ShopSync
from segments.shops.models import Shop
from segments.tags.models import TagResult
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = User.objects.create_user("operator", password="x", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def delivery(status: str, payload: dict | None = None) -> WebhookEvent:
    return WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain="ops.myshopify.com",
                                       topic="orders/create", payload={"id": 1} if payload is None else payload,
                                       status=status, attempts=8, last_error="boom")


def test_only_staff_get_in(client):
    assert client.get("/ops/admin/webhooks/webhookevent/").status_code == 302        # to the login page
    User.objects.create_user("shopper", password="x")
    client.login(username="shopper", password="x")
    assert client.get("/ops/admin/webhooks/webhookevent/").status_code == 302


@pytest.mark.parametrize("page", ["webhooks/webhookevent", "segments/tagchange", "segments/tagbulkoperation",
                                  "segments/shopsync"])
def test_each_page_lists_rows_and_offers_no_edit(staff, page):
    delivery(EventStatus.FAILED)
    response = staff.get(f"/ops/admin/{page}/")
    assert response.status_code == 200
    assert staff.get(f"/ops/admin/{page}/add/").status_code == 403
    assert f'href="/ops/admin/{page}/add/"'.encode() not in response.content      # no "Add" button


def test_the_payload_is_not_shown(staff):
    event = delivery(EventStatus.FAILED, {"id": 1, "email": "secret.person@example.org"})
    page = staff.get(f"/ops/admin/webhooks/webhookevent/{event.pk}/change/")
    assert page.status_code == 200 and b"secret.person" not in page.content


def test_requeue_failed_deliveries_makes_only_failed_ones_with_a_payload_pending(staff, django_capture_on_commit_callbacks):
    failed, blanked, done = delivery(EventStatus.FAILED), delivery(EventStatus.FAILED, {}), delivery(EventStatus.PROCESSED)
    with django_capture_on_commit_callbacks():
        response = staff.post("/ops/admin/webhooks/webhookevent/", {
            "action": "requeue_failed", "_selected_action": [failed.pk, blanked.pk, done.pk]}, follow=True)
    assert b"1 failed deliveries requeued" in response.content
    failed.refresh_from_db(), blanked.refresh_from_db(), done.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == (EventStatus.PENDING, 0, "")
    assert blanked.status == EventStatus.FAILED and done.status == EventStatus.PROCESSED


def test_requeue_failed_tag_changes_makes_them_due_again(staff):
    shop = Shop.objects.create(domain="ops.myshopify.com", access_token="shpat_x", scopes="write_customers")
    customer = Customer.objects.create(shop=shop, shopify_id=1)
    now = timezone.now()
    failed = TagChange.objects.create(shop=shop, customer=customer, tag="seg:vip", add=True, created_at=now,
                                      processed_at=now, result=TagResult.FAILED, attempts=10, last_error="boom")
    applied = TagChange.objects.create(shop=shop, customer=customer, tag="seg:new", add=True, created_at=now,
                                       processed_at=now, result=TagResult.APPLIED)
    staff.post("/ops/admin/segments/tagchange/", {"action": "requeue_failed",
                                                  "_selected_action": [failed.pk, applied.pk]})
    failed.refresh_from_db(), applied.refresh_from_db()
    assert (failed.processed_at, failed.result, failed.attempts) == (None, "", 0)
    assert applied.processed_at is not None


def test_restart_failed_backfills_restarts_only_failed_ones(staff):
    shops = [Shop.objects.create(domain=f"b{i}.myshopify.com", access_token="shpat_x", scopes="read_orders")
             for i in range(2)]
    failed = ShopSync.objects.create(shop=shops[0], backfill_status=BackfillStatus.FAILED)
    ShopSync.objects.create(shop=shops[1], backfill_status=BackfillStatus.DONE)
    response = staff.post("/ops/admin/segments/shopsync/", {
        "action": "requeue_failed", "_selected_action": [failed.pk, shops[1].sync.pk]}, follow=True)
    assert b"1 failed backfills restarted" in response.content
