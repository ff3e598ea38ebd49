"""The operator's admin in Chromium: a staff user signs in, reads the failed deliveries (never their
payloads) and requeues them; the page says how many, and the drain takes them again (in-process here,
without a broker: they end processed, their errors cleared)."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User

from tests.browser.conftest import screenshot
from webhooks.models import EventStatus, WebhookEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_requeues_failed_deliveries(page, live_server):
    User.objects.create_user("operator", password="a long operator password", is_staff=True, is_superuser=True)
    failed = [WebhookEvent.objects.create(
        webhook_id=str(uuid.uuid4()), shop_domain="ops.myshopify.com", topic="orders/create",
        payload={"id": n, "email": "hidden.shopper@example.org"}, status=EventStatus.FAILED, attempts=8,
        last_error="OperationalError: could not connect to server") for n in range(3)]
    WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain="ops.myshopify.com", topic="orders/paid",
                                payload={"id": 9}, status=EventStatus.PROCESSED)

    page.goto(f"{live_server.url}/ops/admin/webhooks/webhookevent/?status__exact=failed")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a long operator password")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 3
    assert "hidden.shopper" not in page.content()
    screenshot(page, "ops-admin-deliveries")

    page.check("#action-toggle")
    page.select_option("select[name=action]", "requeue_failed")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "3 failed deliveries requeued." in page.inner_text(".messagelist")
    screenshot(page, "ops-admin-requeued")
    again = WebhookEvent.objects.filter(pk__in=[e.pk for e in failed])
    assert {(e.status, e.last_error) for e in again} == {(EventStatus.PROCESSED, "")}
