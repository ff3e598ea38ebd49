"""GET /api/sync, /api/sync/audit and /api/segments/<id>/snippet over real session tokens, scoped to
the token's shop; the snippets rendered by a real Liquid engine."""
from __future__ import annotations

import pytest
from liquid import Environment

from segments.membership.models import Segment
from segments.membership.recompute import segments_recompute
from segments.shops.models import Shop
from segments.tags.models import TagAudit
from segments.tags.snippets import segment_snippet
from segments.tags.sync import shop_tags_sync
from tests.conftest import run_install
from tests.segments.engine.test_metrics_table import Mirror
from tests.segments.tags.conftest import BUYERS, TagStore
from tests.segments.web.api.conftest import Api, mint

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, devstore, settings, tagstore) -> Api:
    return Api(client, mint(devstore, tagstore.shop.domain, settings.SHOPIFY_API_KEY))


@pytest.fixture
def synced(tagstore):
    sids = tagstore.customers(5, tags=["merchant"])
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    return sids


def test_sync_status(api, tagstore, synced):
    # given one more change waiting
    (extra,) = tagstore.customers(1)
    tagstore.order(extra)
    tagstore.recompute(customer_ids=[tagstore.pk(extra)])
    body = api.get("/api/sync").json()
    assert body["queue"]["changes"] == 1 and body["queue"]["customers"] == 1
    assert body["queue"]["oldest_age_seconds"] >= 0
    assert body["throttle"]["maximum_available"] == 2000.0 and body["throttle"]["restore_rate"] == 100.0
    assert body["throttle"]["observed_at"] is not None
    assert body["last_24h"] == {"applied": 5}
    assert body["settings"] == {"tag_prefix": "seg:", "holdout_tag": "", "drift_policy": "repair",
                                "tag_metafield": False, "problems": []}
    assert body["last_errors"] == [] and body["bulk"] == []


def test_sync_status_reports_errors_and_bad_settings(api, tagstore, synced):
    Shop.objects.filter(pk=tagstore.shop.pk).update(holdout_tag="control:{handle}")
    with tagstore.devstore.store.tx() as conn:
        conn.execute("DELETE FROM customers WHERE id = ?", (synced[0],))
    Segment.objects.filter(shop=tagstore.shop).update(status="archived")
    segments_recompute(shop=tagstore.shop, segments=list(Segment.objects.filter(shop=tagstore.shop)))
    shop_tags_sync(shop_id=tagstore.shop.pk)
    body = api.get("/api/sync").json()
    assert [e["result"] for e in body["last_errors"]] == ["customer_gone"]
    assert body["last_errors"][0]["shopify_id"] == synced[0]
    assert any("prefix" in p for p in body["settings"]["problems"])


def test_audit_pages_newest_first_and_filters_by_customer(api, tagstore, synced):
    first = api.get("/api/sync/audit", limit=2).json()
    assert len(first["changes"]) == 2 and first["next_before"] == first["changes"][-1]["id"]
    assert first["changes"][0]["id"] > first["changes"][1]["id"]
    row = first["changes"][0]
    assert (row["tag"], row["action"], row["result"], row["source"], row["segment_version"]) == (
        "seg:buyers", "add", "applied", "membership", 1)
    rest = api.get("/api/sync/audit", limit=10, before=first["next_before"]).json()
    assert len(rest["changes"]) == 3 and rest["next_before"] is None
    one = tagstore.pk(synced[2])
    only = api.get("/api/sync/audit", customer=one).json()["changes"]
    assert [r["customer"] for r in only] == [one]
    assert api.get("/api/sync/audit", limit=0).status_code == 400


def test_another_shops_rows_are_404s(api, client, devstore, settings, tagstore, synced,
                                     django_capture_on_commit_callbacks):
    domain = devstore.create_shop()
    with django_capture_on_commit_callbacks(execute=True):
        assert run_install(client, devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
    other = TagStore(devstore=devstore, shop=Shop.objects.get(domain=domain), mirror=None)
    other.mirror = Mirror(other.shop)
    (sid,) = other.customers(1)
    segment = other.segment("theirs", BUYERS)
    assert api.get("/api/sync/audit", customer=other.pk(sid)).status_code == 404
    assert api.get(f"/api/segments/{segment.pk}/snippet").status_code == 404
    # and their audit never shows in ours
    TagAudit.objects.create(shop=other.shop, customer_id=other.pk(sid), customer_shopify_id=sid, tag="seg:theirs",
                            add=True, source="membership", result="applied")
    assert all(r["tag"] == "seg:buyers" for r in api.get("/api/sync/audit", limit=50).json()["changes"])
    assert api.client.get("/api/sync").status_code == 401


def test_snippet_endpoint(api, tagstore):
    Shop.objects.filter(pk=tagstore.shop.pk).update(holdout_tag="seg:{handle}-control")
    segment = tagstore.segment("vip", BUYERS)
    body = api.get(f"/api/segments/{segment.pk}/snippet").json()
    assert body["tag"] == "seg:vip" and body["holdout_tag"] == "seg:vip-control"
    assert "customer.tags contains 'seg:vip'" in body["liquid"]
    assert "customer.tags contains 'seg:vip-control'" in body["holdout_liquid"]


@pytest.mark.parametrize("customer, shown", [
    ({"tags": ["wholesale", "seg:vip"]}, "MEMBER"),
    ({"tags": ["wholesale"]}, "FALLBACK"),
    ({"tags": ["seg:vip-control"]}, "FALLBACK"),     # a holdout member
    ({"tags": []}, "FALLBACK"),
    (None, "FALLBACK"),                              # a logged-out visitor
])
def test_snippets_render_with_a_real_liquid_engine(tagstore, customer, shown):
    segment = tagstore.segment("vip", BUYERS, name="VIP {% raw %} 100%")
    source = segment_snippet(segment=segment)
    # the theme developer replaces the placeholders with their content
    source = source.replace('<div class="shopseg-vip">…</div>', "MEMBER").replace(
        "{%- comment -%} Fallback: everyone else, including logged-out visitors. {%- endcomment -%}", "FALLBACK")
    template = Environment().from_string(source)
    context = {"customer": customer} if customer is not None else {}
    assert template.render(**context).strip() == shown
