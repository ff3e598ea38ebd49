"""Settings over the API (through the shop settings service), retrying failed tag changes, and the
compliance export download."""
from __future__ import annotations

import pytest
from django.utils import timezone

from segments.membership.models import TagChange
from segments.mirror.models import ComplianceRequest
from segments.privacy.compliance import compliance_customer_redact, compliance_data_request
from segments.shops.models import Shop
from tests.segments.web.api.conftest import BUYERS, assert_error, create

pytestmark = pytest.mark.django_db


def shop_row(shop: Shop) -> dict:
    return Shop.objects.filter(pk=shop.pk).values().get()


# -- settings ------------------------------------------------------------------------------------------
def test_settings_read_and_change(api, shop, other):
    current = api.get("/api/settings")
    assert current.status_code == 200
    body = current.json()
    assert body["tag_prefix"] == "seg:" and body["drift_policy"] == shop.drift_policy
    assert body["choices"]["drift_policy"] == ["repair", "report"]
    assert body["ranges"]["recompute_hour"] == {"min": 0, "max": 23}
    other_shop, _ = other
    theirs_before = shop_row(other_shop)

    changed = api.patch("/api/settings", {"drift_policy": "report", "recompute_hour": 5})

    assert changed.status_code == 200, changed.content
    assert changed.json()["drift_policy"] == "report" and changed.json()["recompute_hour"] == 5
    stored = Shop.objects.get(pk=shop.pk)
    assert (stored.drift_policy, stored.recompute_hour) == ("report", 5)
    assert shop_row(other_shop) == theirs_before


def test_a_new_tag_prefix_queues_every_member_for_retagging(api, shop, django_capture_on_commit_callbacks):
    create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    before = TagChange.objects.filter(shop=shop, source="resync").count()
    response = api.patch("/api/settings", {"tag_prefix": "vip:"})
    assert response.status_code == 200, response.content
    assert TagChange.objects.filter(shop=shop, source="resync").count() == before + 3
    assert api.get("/api/segments").json()["segments"][0]["tag"] == "vip:buyers"


@pytest.mark.parametrize("change, path", [
    ({"tag_prefix": "Not A Prefix"}, "tag_prefix"),
    ({"recompute_hour": 24}, "recompute_hour"),
    ({"payload_retention_days": "30"}, "payload_retention_days"),
    ({"drift_policy": "ignore"}, "drift_policy"),
    ({"tag_metafield": 1}, "tag_metafield"),
    ({"holdout_tag": "control"}, "holdout_tag"),
    ({"shop_domain": "x"}, "shop_domain"),
    ({"tag_prefix": 7}, "tag_prefix"),
    ({"tag_metafield": "yes"}, "tag_metafield"),
    ({"recompute_hour": True}, "recompute_hour"),           # a bool is not an hour
    ({"checkout_abandon_minutes": 1}, "checkout_abandon_minutes"),
    ({"payload_retention_days": 0}, "payload_retention_days"),
])
def test_refused_settings_name_their_path_and_save_nothing(api, shop, change, path,
                                                           django_capture_on_commit_callbacks):
    before, changes = shop_row(shop), TagChange.objects.count()
    with django_capture_on_commit_callbacks() as callbacks:
        error = assert_error(api.patch("/api/settings", {"drift_policy": "report", **change}), 400,
                             "invalid_settings")
    assert path in [p["path"] for p in error["problems"]]
    assert shop_row(shop) == before and TagChange.objects.count() == changes and callbacks == []


# -- retrying failed tag changes --------------------------------------------------------------------------
def change(shop, customer_pk: int, result: str | None, tag: str = "seg:buyers") -> TagChange:
    now = timezone.now()
    done = result is not None
    return TagChange.objects.create(shop=shop, customer_id=customer_pk, tag=tag, add=True, created_at=now,
                                    processed_at=now if done else None, result=result or "",
                                    attempts=10 if result == "failed" else 0,
                                    last_error="throttled" if result == "failed" else "")


@pytest.fixture
def changes(shop, other):
    other_shop, _ = other
    pks = shop.customer_pks
    return {"failed": change(shop, pks[1], "failed"), "invalid": change(shop, pks[2], "invalid"),
            "applied": change(shop, pks[3], "applied"), "tag_limit": change(shop, pks[4], "tag_limit"),
            "pending": change(shop, pks[5], None), "theirs": change(other_shop, other_shop.customer_pks[1], "failed")}


def rows(changes: dict) -> dict:
    return {name: TagChange.objects.filter(pk=c.pk).values().get() for name, c in changes.items()}


def test_retry_without_ids_makes_every_failed_change_of_the_shop_due(api, shop, changes,
                                                                     django_capture_on_commit_callbacks):
    before = rows(changes)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post("/api/sync/retry", raw=b"")
    assert response.status_code == 200, response.content
    assert response.json() == {"retried": 2, "not_found": [], "not_failed": []}
    after = rows(changes)
    for name in ("failed", "invalid"):
        row = after[name]
        assert (row["processed_at"], row["result"], row["attempts"], row["last_error"]) == (None, "", 0, "")
        assert row["next_attempt_at"] <= timezone.now()
    for name in ("applied", "tag_limit", "pending", "theirs"):
        assert after[name] == before[name], name
    assert len(callbacks) == 1                      # a sync run is scheduled once the retry commits


def test_retry_of_ids_reports_other_shops_and_unfailed_ids(api, changes, django_capture_on_commit_callbacks):
    before = rows(changes)
    ids = [changes["failed"].pk, changes["applied"].pk, changes["theirs"].pk, 10**12]
    response = api.post("/api/sync/retry", {"ids": ids})
    assert response.json() == {"retried": 1, "not_found": sorted([changes["theirs"].pk, 10**12]),
                               "not_failed": [changes["applied"].pk]}
    after = rows(changes)
    assert after["failed"]["processed_at"] is None
    for name in ("invalid", "applied", "tag_limit", "pending", "theirs"):
        assert after[name] == before[name], name


def test_retry_when_nothing_failed_schedules_nothing(api, shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post("/api/sync/retry", {})
    assert response.json() == {"retried": 0, "not_found": [], "not_failed": []} and callbacks == []


@pytest.mark.parametrize("ids, path", [
    ("all", "ids"), ([0], "ids[0]"), ([1, "2"], "ids[1]"), ([True], "ids[0]"), ([1.5], "ids[0]"),
    (list(range(1, 1002)), "ids"), ([2**63], "ids[0]"),
])
def test_retry_refusals_change_nothing(api, changes, ids, path, django_capture_on_commit_callbacks):
    before = rows(changes)
    with django_capture_on_commit_callbacks() as callbacks:
        error = assert_error(api.post("/api/sync/retry", {"ids": ids}), 400, "invalid_settings")
    assert [p["path"] for p in error["problems"]] == [path]
    assert rows(changes) == before and callbacks == []


# -- compliance export ----------------------------------------------------------------------------------
def data_request(shop, request_id: int) -> ComplianceRequest:
    return compliance_data_request(shop_domain=shop.domain, payload={
        "shop_id": 1, "shop_domain": shop.domain, "customer": {"id": 2, "email": "c2@example.com", "phone": None},
        "orders_requested": [], "data_request": {"id": request_id}})


def test_export_downloads_the_stored_export(api, shop):
    request = data_request(shop, 9001)
    response = api.get(f"/api/compliance/{request.pk}/export")
    assert response.status_code == 200
    assert response.json() == ComplianceRequest.objects.get(pk=request.pk).export
    assert response.json()["customer"]["email"] == "c2@example.com" and len(response.json()["orders"]) == 2
    assert response["Content-Disposition"] == 'attachment; filename="customer-2-data-request-9001.json"'
    assert response["Cache-Control"] == "no-store"


def test_export_of_another_shop_an_erased_export_or_a_redact_is_404(api, shop, other):
    other_shop, theirs = other
    mine = data_request(shop, 9001)
    assert_error(theirs.get(f"/api/compliance/{mine.pk}/export"), 404, "not_found")
    redact = compliance_customer_redact(shop_domain=shop.domain, payload={
        "shop_id": 1, "shop_domain": shop.domain, "customer": {"id": 2, "email": "c2@example.com"},
        "orders_to_redact": []})
    assert_error(api.get(f"/api/compliance/{redact.pk}/export"), 404, "not_found")
    assert_error(api.get(f"/api/compliance/{mine.pk}/export"), 404, "not_found")     # erased by the redact
