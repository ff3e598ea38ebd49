"""Deleting (archiving) a segment, searching its members, and the builder's preview (dry-run)."""
from __future__ import annotations

import pytest

from segments.membership.models import Membership, MembershipEvent, Segment, SegmentVersion, TagChange
from tests.segments.web.api.conftest import BAD_RULES, BUYERS, REPEAT, assert_error, counts, create, member_sids

pytestmark = pytest.mark.django_db


# -- delete -------------------------------------------------------------------------------------------
def test_delete_archives_members_leave_through_the_outbox_and_history_stays(api, shop,
                                                                           django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    sid = created["id"]
    assert member_sids(sid) == {1, 2, 3}
    adds = TagChange.objects.filter(segment_id=sid, add=True).count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.delete(f"/api/segments/{sid}", reason="Season over")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["changed"] is True and body["segment"]["status"] == "archived"
    assert body["segment"]["current_version"] == 2 and len(callbacks) == 1     # the recompute
    version = SegmentVersion.objects.get(segment_id=sid, number=2)
    assert (version.author, version.reason) == ("1", "Season over")
    assert member_sids(sid) == set()
    exits = MembershipEvent.objects.filter(segment_id=sid, entered=False)
    assert sorted(exits.values_list("customer__shopify_id", flat=True)) == [1, 2, 3]
    assert MembershipEvent.objects.filter(segment_id=sid, entered=True).count() == 3    # history kept
    removals = TagChange.objects.filter(segment_id=sid, add=False)
    assert sorted(removals.values_list("customer__shopify_id", flat=True)) == [1, 2, 3]
    assert set(removals.values_list("tag", flat=True)) == {"seg:buyers"}
    assert TagChange.objects.filter(segment_id=sid, add=True).count() == adds
    # Still readable, with its versions and history.
    assert api.get(f"/api/segments/{sid}").json()["status"] == "archived"
    assert len(api.get(f"/api/segments/{sid}/versions").json()["versions"]) == 2
    assert len(api.get(f"/api/segments/{sid}/history").json()["events"]) == 6


def test_a_second_delete_changes_nothing(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    with django_capture_on_commit_callbacks(execute=True):
        first = api.delete(f"/api/segments/{created['id']}")
    assert first.json()["changed"] is True
    assert SegmentVersion.objects.get(segment_id=created["id"], number=2).reason == "Deleted (archived) through the API"
    before = counts()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = api.delete(f"/api/segments/{created['id']}")

    assert second.status_code == 200
    again = second.json()
    assert again["changed"] is False
    assert (again["segment"]["status"], again["segment"]["current_version"]) == ("archived", 2)
    assert callbacks == [] and counts() == before


def test_delete_with_a_reason_too_long_changes_nothing(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    before = counts()
    with django_capture_on_commit_callbacks() as callbacks:
        error = assert_error(api.delete(f"/api/segments/{created['id']}", reason="r" * 501), 400, "invalid_params")
    assert error["problems"] == [{"path": "reason", "message": "must be at most 500 characters"}]
    assert callbacks == [] and counts() == before
    assert Segment.objects.get(pk=created["id"]).status == "active"


# -- members: search and pages --------------------------------------------------------------------------
def test_members_carry_a_link_to_the_customer_in_the_shopify_admin(api, shop, devstore, settings,
                                                                   django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    members = api.get(f"/api/segments/{created['id']}/members").json()["members"]
    assert [m["shopify_id"] for m in members] == [1, 2, 3]
    for member in members:
        assert member["admin_url"] == f"{devstore.url}/shops/{shop.domain}/admin/customers/{member['shopify_id']}"
    settings.SHOPIFY_SHOP_BASE_URL = "https://{shop}"      # on Shopify: the admin at admin.shopify.com
    handle = shop.domain.removesuffix(".myshopify.com")
    members = api.get(f"/api/segments/{created['id']}/members").json()["members"]
    assert members[0]["admin_url"] == f"https://admin.shopify.com/store/{handle}/customers/{members[0]['shopify_id']}"


@pytest.mark.parametrize("query, expected", [
    ("ada", [2]), ("LOVELACE", [2]), ("ada lovelace", [2]), ("  Ada  ", [2]),
    ("c3@example", [3]), ("EXAMPLE.COM", [1, 2, 3]), ("c5@", []),    # customer 5 is no member
    ("%", []), ("_", []), ("", [1, 2, 3]),
])
def test_members_search_by_name_or_email_case_insensitively(api, query, expected,
                                                           django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    response = api.get(f"/api/segments/{created['id']}/members", q=query)
    assert response.status_code == 200
    assert [m["shopify_id"] for m in response.json()["members"]] == expected


def test_members_search_pages_with_the_keyset(api, shop, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    path = f"/api/segments/{created['id']}/members"
    first = api.get(path, q="example", limit=2).json()
    assert [m["shopify_id"] for m in first["members"]] == [1, 2]
    assert first["next_after"] == shop.customer_pks[2]
    second = api.get(path, q="example", limit=2, after=first["next_after"]).json()
    assert [m["shopify_id"] for m in second["members"]] == [3] and second["next_after"] is None


def test_members_search_too_long_is_400(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    error = assert_error(api.get(f"/api/segments/{created['id']}/members", q="a" * 101), 400, "invalid_params")
    assert error["problems"][0]["path"] == "q"


# -- the preview ---------------------------------------------------------------------------------------
def test_preview_of_new_rules_counts_and_samples_members_and_writes_nothing(api, django_capture_on_commit_callbacks):
    before = counts()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post("/api/segments/dry-run", {"rules": REPEAT})
    assert response.status_code == 200, response.content
    preview = response.json()
    assert preview["size"] == 2 and preview["evaluated"] == 6
    assert [c["shopify_id"] for c in preview["sample"]["members"]] == [2, 3]
    assert preview["sample"]["members"][0]["name"] == "Ada Lovelace"
    assert preview["entries"] == 2 and preview["exits"] == 0 and preview["summary"]
    assert callbacks == [] and counts() == before


def test_preview_of_an_edit_shows_the_diff_against_the_members(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    before = counts()
    with django_capture_on_commit_callbacks() as callbacks:
        by_path = api.post(f"/api/segments/{created['id']}/dry-run", {"rules": REPEAT})
        by_body = api.post("/api/segments/dry-run", {"rules": REPEAT, "segment": created["id"]})
    assert by_path.status_code == 200
    diff = by_path.json()
    assert (diff["size"], diff["entries"], diff["exits"]) == (2, 0, 1)
    assert [c["shopify_id"] for c in diff["sample"]["exits"]] == [1]
    assert by_body.json() == diff
    assert callbacks == [] and counts() == before
    assert Membership.objects.filter(segment_id=created["id"]).count() == 3


def test_preview_refusals_carry_the_rule_paths(api, other, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    path = f"/api/segments/{created['id']}/dry-run"
    bad = assert_error(api.post(path, {"rules": BAD_RULES}), 400, "invalid_rules")
    assert bad["problems"][0]["path"] == "include.all[0].value"
    assert assert_error(api.post(path, {}), 400, "invalid_settings")["problems"] == [
        {"path": "rules", "message": "required"}]
    assert_error(api.post(path, {"rules": BUYERS, "segment": created["id"]}), 400, "invalid_settings")
    _, theirs = other
    assert_error(theirs.post(path, {"rules": BUYERS}), 404, "not_found")


def test_a_chosen_handle_becomes_the_tag_or_is_refused_at_its_path(api):
    rules = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
    created = api.post("/api/segments", {"name": "Buyers", "rules": rules, "handle": "buyers-club"})
    assert created.status_code == 201 and created.json()["tag"] == "seg:buyers-club"
    taken = api.post("/api/segments", {"name": "Other", "rules": rules, "handle": "buyers-club"})
    assert taken.status_code == 400
    assert [p["path"] for p in taken.json()["error"]["problems"]] == ["handle"]
    assert Segment.objects.filter(name="Other").count() == 0
