"""The segments JSON API over real session tokens: catalog, templates, segments and their versions,
members, history, dry-run, why and exclusive groups; bad input saves and enqueues nothing; another
shop's rows are 404s."""
from __future__ import annotations

import time

import jwt
import pytest

from segments.membership.models import Segment, SegmentVersion
from tests.segments.web.api.conftest import BAD_RULES, BUYERS, REPEAT, Api, counts, create, member_sids, mint

pytestmark = pytest.mark.django_db


# -- catalog and templates -------------------------------------------------------------------------
def test_metrics_and_templates(api):
    metrics = api.get("/api/metrics")
    assert metrics.status_code == 200
    keys = {m["key"] for m in metrics.json()["metrics"]}
    assert {"orders_count", "total_spent", "spend_percentile"} <= keys

    templates = api.get("/api/templates").json()["templates"]
    by_key = {t["key"]: t for t in templates}
    vip = by_key["vip"]
    assert vip["name"] and vip["why"] and vip["rules"]["include"]["metric"] == "spend_percentile"
    assert vip["family"] == "purchase" and {t["family"] for t in templates} == {"purchase", "browsing", "predictions"}
    assert vip["editable"] == [{"name": "percentile", "label": vip["editable"][0]["label"],
                                "paths": ["include.value"], "value": "0.9"}]
    days = next(e for e in by_key["frequent_buyers"]["editable"] if e["name"] == "days")
    assert days["paths"] == ["include.all[0].window.last_days", "include.all[1].window.last_days"]
    assert days["value"] == 90


# -- create, list, detail ----------------------------------------------------------------------------
def test_create_from_rules_computes_members_and_lists_the_segment(api, shop, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks,
                     {"name": "Buyers", "rules": BUYERS, "description": "anyone who bought", "reason": "launch"})

    assert created["name"] == "Buyers" and created["handle"] == "buyers" and created["tag"] == "seg:buyers"
    assert created["rules"] == BUYERS and created["current_version"] == 1 and created["status"] == "active"
    assert created["summary"] and created["description"] == "anyone who bought"
    version = SegmentVersion.objects.get(segment_id=created["id"])
    assert (version.number, version.author, version.reason) == (1, "1", "launch")   # devstore's user 1
    assert member_sids(created["id"]) == {1, 2, 3}

    listed = api.get("/api/segments").json()["segments"]
    assert len(listed) == 1
    row = listed[0]
    assert row["id"] == created["id"] and row["member_count"] == 3 and row["holdout_count"] == 0
    assert row["computed_version"] == 1 and row["computing"] is False and row["last_computed_at"]
    assert row["summary"] == version.summary and row["group"] is None and row["template"] == ""
    assert "rules" not in row

    detail = api.get(f"/api/segments/{created['id']}").json()
    assert detail["rules"] == BUYERS and detail["member_count"] == 3


def test_create_without_a_user_in_the_token_is_authored_by_the_merchant(client, devstore, settings, shop,
                                                                         django_capture_on_commit_callbacks):
    now = int(time.time())   # `sub` must be present (shopifyapi requires it); here it names nobody
    token = jwt.encode({"iss": f"https://{shop.domain}/admin", "dest": f"https://{shop.domain}",
                        "aud": settings.SHOPIFY_API_KEY, "sub": "", "exp": now + 60, "nbf": now, "jti": "j", "sid": "s"},
                       settings.SHOPIFY_API_SECRET, algorithm="HS256")
    created = create(Api(client, token), django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    assert SegmentVersion.objects.get(segment_id=created["id"]).author == "merchant"


def test_create_before_recompute_shows_computing(api):
    response = api.post("/api/segments", {"name": "Buyers", "rules": BUYERS})   # on-commit not run
    assert response.status_code == 201
    assert response.json()["computing"] is True and response.json()["computed_version"] is None


def test_create_from_a_template_with_overrides(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks,
                     {"template": "returning_customers", "overrides": {"min_orders": 2}, "holdout_percent": 0})
    assert created["template"] == "returning_customers" and created["name"] == "Returning customers"
    assert created["rules"]["include"] == {"metric": "orders_count", "op": "gte", "value": 2}
    assert member_sids(created["id"]) == {2, 3}

    named = create(api, django_capture_on_commit_callbacks, {"template": "returning_customers", "name": "Regulars"})
    assert named["name"] == "Regulars" and named["handle"] == "regulars"
    # Rules edited from a template keep the template as the segment's origin.
    edited = create(api, django_capture_on_commit_callbacks,
                    {"template": "returning_customers", "name": "Edited", "rules": BUYERS})
    assert edited["template"] == "returning_customers" and edited["rules"] == BUYERS


def test_create_in_a_group_with_holdout_and_priority(api, django_capture_on_commit_callbacks):
    group = api.post("/api/groups", {"name": "Tiers", "hysteresis_days": 30})
    assert group.status_code == 201
    gid = group.json()["id"]
    gold = create(api, django_capture_on_commit_callbacks,
                  {"name": "Gold", "rules": REPEAT, "group": gid, "priority": 10, "holdout_percent": 10})
    silver = create(api, django_capture_on_commit_callbacks,
                    {"name": "Silver", "rules": BUYERS, "group": gid, "priority": 5})
    assert gold["group"] == {"id": gid, "name": "Tiers"} and gold["priority"] == 10 and gold["holdout_percent"] == 10
    assert member_sids(gold["id"]) == {2, 3} and member_sids(silver["id"]) == {1}

    groups = api.get("/api/groups").json()["groups"]
    assert groups == [{"id": gid, "name": "Tiers", "hysteresis_days": 30, "created_at": groups[0]["created_at"],
                       "segments": [{"id": gold["id"], "name": "Gold", "priority": 10},
                                    {"id": silver["id"], "name": "Silver", "priority": 5}]}]


# -- editing and versions ---------------------------------------------------------------------------
def test_patch_new_rules_creates_version_2_with_diff_and_author(client, devstore, settings, api, shop,
                                                                django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    editor = Api(client, mint(devstore, shop.domain, settings.SHOPIFY_API_KEY, user_id=77))

    with django_capture_on_commit_callbacks(execute=True):
        response = editor.patch(f"/api/segments/{created['id']}",
                                {"rules": REPEAT, "holdout_percent": 0, "reason": "only repeat buyers"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["changed"] is True
    version = body["version"]
    assert (version["number"], version["author"], version["reason"]) == (2, "77", "only repeat buyers")
    assert version["diff"] and version["rules"] == REPEAT
    assert any("2" in change["text"] for change in version["diff"])
    assert body["segment"]["current_version"] == 2 and body["segment"]["rules"] == REPEAT
    assert member_sids(created["id"]) == {2, 3}
    assert Segment.objects.get(pk=created["id"]).computed_version == 2

    versions = api.get(f"/api/segments/{created['id']}/versions").json()["versions"]
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[0]["author"] == "77" and versions[1]["author"] == "1"
    assert versions[0]["summary"] != versions[1]["summary"] and versions[0]["diff"] == version["diff"]


def test_patch_settings_and_nothing_changed(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    gid = api.post("/api/groups", {"name": "Tiers"}).json()["id"]
    url = f"/api/segments/{created['id']}"

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(url, {"name": "All buyers", "group": gid, "priority": 3, "holdout_percent": 20,
                                   "description": "d", "reason": "tidy up"})
    assert response.status_code == 200, response.content
    segment = response.json()["segment"]
    assert (segment["name"], segment["group"], segment["priority"], segment["holdout_percent"]) == \
        ("All buyers", {"id": gid, "name": "Tiers"}, 3, 20)
    assert segment["handle"] == "buyers"                  # the tag never changes with the name
    assert {c["path"] for c in response.json()["version"]["diff"]} >= {"name", "group", "priority",
                                                                       "holdout_percent"}

    before = counts()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        same = api.patch(url, {"rules": BUYERS, "name": "All buyers", "group": gid, "reason": "again"})
    assert same.status_code == 200 and same.json() == {"changed": False}
    assert counts() == before and callbacks == []

    with django_capture_on_commit_callbacks(execute=True):
        paused = api.patch(url, {"status": "paused", "group": None, "reason": "pause"})
    assert paused.json()["segment"]["status"] == "paused" and paused.json()["segment"]["group"] is None
    assert paused.json()["segment"]["computing"] is False


# -- members, history, why --------------------------------------------------------------------------
def test_members_are_paged_by_customer_id(api, shop, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    url = f"/api/segments/{created['id']}/members"
    pks = shop.customer_pks

    first = api.get(url, limit=2).json()
    assert [m["id"] for m in first["members"]] == [pks[1], pks[2]]
    ada = first["members"][1]
    assert (ada["shopify_id"], ada["name"], ada["email"], ada["holdout"]) == (2, "Ada Lovelace", "c2@example.com",
                                                                             False)
    assert ada["entered_at"] and first["next_after"] == pks[2]
    second = api.get(url, limit=2, after=first["next_after"]).json()
    assert [m["id"] for m in second["members"]] == [pks[3]] and second["next_after"] is None
    assert len(api.get(url).json()["members"]) == 3


def test_history_newest_first_by_customer_and_paged(api, shop, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    url = f"/api/segments/{created['id']}"
    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(url, {"rules": REPEAT, "reason": "repeat only"}).status_code == 200
    pks = shop.customer_pks

    events = api.get(f"{url}/history").json()
    assert events["next_before"] is None
    rows = events["events"]
    assert len(rows) == 4                                 # three entries, then customer 1's exit
    assert rows[0] == {"id": rows[0]["id"], "customer": pks[1], "entered": False, "holdout": False,
                       "at": rows[0]["at"], "version": 2, "trigger": "definition", "cause": "version 2"}
    assert all(r["entered"] and r["version"] == 1 for r in rows[1:])

    one = api.get(f"{url}/history", customer=pks[1]).json()["events"]
    assert [(e["entered"], e["version"]) for e in one] == [(False, 2), (True, 1)]

    page = api.get(f"{url}/history", limit=3).json()
    assert [e["id"] for e in page["events"]] == [r["id"] for r in rows[:3]]
    rest = api.get(f"{url}/history", limit=3, before=page["next_before"]).json()
    assert [e["id"] for e in rest["events"]] == [rows[3]["id"]] and rest["next_before"] is None


def test_why(api, shop, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Repeat", "rules": REPEAT})
    pks = shop.customer_pks
    inside = api.get(f"/api/segments/{created['id']}/why/{pks[2]}").json()
    assert inside["member"] is True and inside["qualifies"] is True
    assert inside["conditions"][0]["metric"] == "orders_count" and inside["conditions"][0]["value"] == 2
    outside = api.get(f"/api/segments/{created['id']}/why/{pks[1]}").json()
    assert outside["member"] is False and outside["conditions"][0]["passed"] is False


# -- dry-run ----------------------------------------------------------------------------------------
def test_dry_run_writes_nothing(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Repeat", "rules": REPEAT})
    before = counts()
    segment_before = Segment.objects.filter(pk=created["id"]).values().get()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        fresh = api.post("/api/segments/dry-run", {"rules": BUYERS})
        against = api.post("/api/segments/dry-run", {"rules": BUYERS, "segment": created["id"]})

    assert fresh.status_code == 200 and against.status_code == 200
    assert fresh.json()["size"] == 3 and fresh.json()["entries"] == 3 and fresh.json()["summary"]
    assert {c["shopify_id"] for c in fresh.json()["sample"]["members"]} == {1, 2, 3}
    assert (against.json()["entries"], against.json()["exits"]) == (1, 0)
    assert [c["shopify_id"] for c in against.json()["sample"]["entries"]] == [1]
    assert counts() == before and callbacks == []
    assert Segment.objects.filter(pk=created["id"]).values().get() == segment_before


def test_dry_run_bad_input(api, other):
    response = api.post("/api/segments/dry-run", {"rules": BAD_RULES})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_rules"
    assert response.json()["error"]["problems"][0]["path"] == "include.all[0].value"
    missing = api.post("/api/segments/dry-run", {})
    assert missing.status_code == 400 and missing.json()["error"]["problems"][0]["path"] == "rules"
    assert api.post("/api/segments/dry-run", {"rules": BUYERS, "segment": 10**12}).status_code == 404
