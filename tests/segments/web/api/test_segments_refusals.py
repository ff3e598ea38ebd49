"""The segments API refuses bad input whole (nothing saved, nothing enqueued), keeps shops apart, and
answers ids beyond any row without an error."""
from __future__ import annotations

import json
import time

import jwt
import pytest

from segments.membership.models import ExclusiveGroup, Membership, MembershipEvent, Segment
from tests.segments.web.api.conftest import BAD_RULES, BUYERS, REPEAT, Api, assert_error, counts, create

pytestmark = pytest.mark.django_db


# -- bad input saves and enqueues nothing ----------------------------------------------------------
CREATE_REFUSALS = {
    "invalid rules": ({"name": "X", "rules": BAD_RULES}, 400, "invalid_rules", "include.all[0].value"),
    "rules not an object": ({"name": "X", "rules": [1]}, 400, "invalid_rules", ""),
    "holdout too big": ({"name": "X", "rules": BUYERS, "holdout_percent": 80}, 400, "invalid_settings",
                        "holdout_percent"),
    "holdout a bool": ({"name": "X", "rules": BUYERS, "holdout_percent": True}, 400, "invalid_settings",
                       "holdout_percent"),
    "blank name": ({"name": "  ", "rules": BUYERS}, 400, "invalid_settings", "name"),
    "no name": ({"rules": BUYERS}, 400, "invalid_settings", "name"),
    "no rules": ({"name": "X"}, 400, "invalid_settings", "rules"),
    "priority a string": ({"name": "X", "rules": BUYERS, "priority": "1"}, 400, "invalid_settings", "priority"),
    "long description": ({"name": "X", "rules": BUYERS, "description": "d" * 501}, 400, "invalid_settings",
                         "description"),
    "unknown field": ({"name": "X", "rules": BUYERS, "holdout": 5}, 400, "invalid_settings", "holdout"),
    "group not an id": ({"name": "X", "rules": BUYERS, "group": "Tiers"}, 400, "invalid_settings", "group"),
    "unknown group": ({"name": "X", "rules": BUYERS, "group": 10**12}, 404, "not_found", None),
    "unknown template": ({"template": "nope"}, 400, "invalid_settings", "template"),
    "unknown override": ({"template": "vip", "overrides": {"pct": "0.5"}}, 400, "invalid_settings",
                         "overrides.pct"),
    "bad override value": ({"template": "vip", "overrides": {"percentile": "2"}}, 400, "invalid_rules",
                           "overrides.percentile"),
    "overrides with rules": ({"template": "vip", "rules": BUYERS, "overrides": {"percentile": "0.5"}}, 400,
                             "invalid_settings", "overrides"),
}


@pytest.mark.parametrize("case", list(CREATE_REFUSALS))
def test_create_refusals_save_and_enqueue_nothing(api, case, django_capture_on_commit_callbacks):
    body, status, code, path = CREATE_REFUSALS[case]
    before = counts()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post("/api/segments", body)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    if path is not None:
        assert path in [p["path"] for p in error["problems"]]
    assert counts() == before and callbacks == []
    assert not Membership.objects.exists() and not MembershipEvent.objects.exists()


BODY_REFUSALS = {
    "not JSON": (b"{name: 1", 400, "invalid_json"),
    "not UTF-8": (b'{"name": "\xff"}', 400, "invalid_json"),
    "NaN": (b'{"name": "X", "holdout_percent": NaN}', 400, "invalid_json"),
    "an array": (b"[1, 2]", 400, "invalid_json"),
    "a string": (b'"rules"', 400, "invalid_json"),
    "empty": (b"", 400, "invalid_json"),
    "a NUL in a name": (b'{"name": "a\\u0000b", "rules": {"version": 1}}', 400, "invalid_json"),
    "a NUL deep in the rules": (json.dumps({"name": "X", "rules": {"version": 1, "include": {
        "metric": "tags", "op": "contains", "value": "v\x00"}}}).encode(), 400, "invalid_json"),
    "too large": (json.dumps({"name": "X", "rules": BUYERS, "description": "d" * (256 * 1024)}).encode(), 413,
                  "payload_too_large"),
    # Deep nesting exhausted Python's stack in the body's checks (a 500); JSON's own limit is ~1,000.
    "nested 40 deep": (b'{"name": "X", "rules": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "invalid_json"),
    "nested 400 deep": (b'{"name": "X", "rules": ' + b"[" * 400 + b"]" * 400 + b"}", 400, "invalid_json"),
    "nested 989 deep": (b'{"name": "X", "rules": ' + b'{"a": ' * 989 + b"1" + b"}" * 989 + b"}", 400,
                        "invalid_json"),
}


@pytest.mark.parametrize("case", list(BODY_REFUSALS))
def test_bodies_that_are_not_a_small_json_object_are_refused(api, case, django_capture_on_commit_callbacks):
    raw, status, code = BODY_REFUSALS[case]
    before = counts()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        responses = [api.post("/api/segments", raw=raw), api.post("/api/segments/dry-run", raw=raw),
                     api.post("/api/groups", raw=raw)]
    for response in responses:
        assert response.status_code == status and response.json()["error"]["code"] == code
    assert counts() == before and callbacks == []


def test_a_form_body_is_not_json(api):
    response = api.post("/api/segments", raw="name=X", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


PATCH_REFUSALS = {
    "invalid rules": ({"rules": BAD_RULES, "reason": "r"}, 400, "invalid_rules", "include.all[0].value"),
    "null rules": ({"rules": None, "reason": "r"}, 400, "invalid_settings", "rules"),
    "bad status": ({"status": "deleted", "reason": "r"}, 400, "invalid_settings", "status"),
    "holdout too big": ({"holdout_percent": 51, "reason": "r"}, 400, "invalid_settings", "holdout_percent"),
    "no reason": ({"rules": REPEAT}, 400, "invalid_settings", "reason"),
    "blank reason": ({"rules": REPEAT, "reason": " "}, 400, "invalid_settings", "reason"),
    "unknown field": ({"handle": "x", "reason": "r"}, 400, "invalid_settings", "handle"),
    "template": ({"template": "vip", "reason": "r"}, 400, "invalid_settings", "template"),
    "unknown group": ({"group": 10**12, "reason": "r"}, 404, "not_found", None),
    "not JSON": (b"nope", 400, "invalid_json", None),
    "an array": (b"[]", 400, "invalid_json", None),
    "too large": (json.dumps({"reason": "r" * (300 * 1024)}).encode(), 413, "payload_too_large", None),
}


@pytest.mark.parametrize("case", list(PATCH_REFUSALS))
def test_patch_refusals_save_and_enqueue_nothing(api, case, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    body, status, code, path = PATCH_REFUSALS[case]
    before = counts()
    segment_before = Segment.objects.filter(pk=created["id"]).values().get()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if isinstance(body, bytes):
            response = api.patch(f"/api/segments/{created['id']}", raw=body)
        else:
            response = api.patch(f"/api/segments/{created['id']}", body)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    if path is not None:
        assert path in [p["path"] for p in error["problems"]]
    assert counts() == before and callbacks == []
    assert Segment.objects.filter(pk=created["id"]).values().get() == segment_before


def test_groups_refusals(api):
    gid = api.post("/api/groups", {"name": "Tiers"}).json()["id"]
    assert ExclusiveGroup.objects.get(pk=gid).hysteresis_days == 0
    before = counts()
    for body, path in (({"name": "Other", "hysteresis_days": 366}, "hysteresis_days"),
                       ({"name": "Other", "hysteresis_days": -1}, "hysteresis_days"),
                       ({"name": "Other", "hysteresis_days": 1.5}, "hysteresis_days"),
                       ({"name": ""}, "name"), ({"hysteresis_days": 3}, "name"), ({"name": "x" * 101}, "name"),
                       ({"name": "Tiers"}, "name"), ({"name": "Other", "colour": "red"}, "colour")):
        response = api.post("/api/groups", body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_settings"
        assert path in [p["path"] for p in response.json()["error"]["problems"]], body
    assert counts() == before
    assert api.post("/api/groups", {"name": "Edge", "hysteresis_days": 365}).status_code == 201


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"after": "-1"},
                                    {"before": "1.5"}, {"customer": "abc"}])
def test_bad_query_parameters_are_400(api, params, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    path = "members" if set(params) <= {"limit", "after"} else "history"
    response = api.get(f"/api/segments/{created['id']}/{path}", **params)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_params"


def test_history_before_an_event_of_another_segment_is_400(api, django_capture_on_commit_callbacks):
    one = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    two = create(api, django_capture_on_commit_callbacks, {"name": "Repeat", "rules": REPEAT})
    foreign_event = MembershipEvent.objects.filter(segment_id=two["id"]).first().pk
    response = api.get(f"/api/segments/{one['id']}/history", before=foreign_event)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_params"


# -- shops are kept apart ----------------------------------------------------------------------------------
def test_another_shop_cannot_see_or_edit_the_segments(api, shop, other, django_capture_on_commit_callbacks):
    other_shop, theirs = other
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    gid = api.post("/api/groups", {"name": "Tiers"}).json()["id"]
    sid = created["id"]
    my_customer = shop.customer_pks[1]
    before = counts()
    segment_before = Segment.objects.filter(pk=sid).values().get()
    missing = theirs.get("/api/segments/999999999999")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert theirs.get("/api/segments").json() == {"segments": []}
        assert theirs.get("/api/groups").json() == {"groups": []}
        responses = [
            theirs.get(f"/api/segments/{sid}"),
            theirs.patch(f"/api/segments/{sid}", {"rules": REPEAT, "reason": "mine now"}),
            theirs.patch(f"/api/segments/{sid}", raw=b"not even json"),
            theirs.get(f"/api/segments/{sid}/versions"),
            theirs.get(f"/api/segments/{sid}/history"),
            theirs.get(f"/api/segments/{sid}/members"),
            theirs.get(f"/api/segments/{sid}/why/{my_customer}"),
            theirs.post("/api/segments/dry-run", {"rules": BUYERS, "segment": sid}),
        ]
        group_responses = [theirs.post("/api/segments", {"name": "Mine", "rules": BUYERS, "group": gid})]
    for response in responses:
        assert response.status_code == 404, response.content
        assert response.json() == missing.json()           # the same answer as for no segment at all
    assert group_responses[0].status_code == 404
    assert group_responses[0].json() == theirs.post("/api/segments", {"name": "Mine", "rules": BUYERS,
                                                                      "group": 10**12}).json()
    assert counts() == before and callbacks == []
    assert Segment.objects.filter(pk=sid).values().get() == segment_before
    assert b"Buyers" not in b"".join(r.content for r in responses)

    # Their own segment works, and its members are their customers only.
    mine = create(theirs, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    assert mine["handle"] == "buyers"
    ids = {m["id"] for m in theirs.get(f"/api/segments/{mine['id']}/members").json()["members"]}
    assert ids == {other_shop.customer_pks[s] for s in (1, 2, 3)}
    # A customer of the other shop, asked about in one's own segment, is a 404 too.
    assert api.get(f"/api/segments/{sid}/why/{other_shop.customer_pks[1]}").status_code == 404
    assert api.get(f"/api/segments/{sid}/history", customer=other_shop.customer_pks[1]).status_code == 404
    assert theirs.get(f"/api/segments/{mine['id']}/why/{my_customer}").status_code == 404


def test_without_a_valid_session_token_everything_is_401(client, devstore, settings, api, shop,
                                                         django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    now = int(time.time())
    forged = jwt.encode({"iss": f"https://{shop.domain}/admin", "dest": f"https://{shop.domain}",
                         "aud": settings.SHOPIFY_API_KEY, "sub": "1", "exp": now + 60, "nbf": now, "jti": "x",
                         "sid": "y"}, "w" * 40, algorithm="HS256")
    before = counts()
    for caller in (Api(client, ""), Api(client, forged)):
        for response in (caller.get("/api/segments"), caller.get("/api/metrics"), caller.get("/api/templates"),
                         caller.post("/api/segments", {"name": "X", "rules": BUYERS}),
                         caller.post("/api/segments", raw=b"x" * (300 * 1024)),
                         caller.patch(f"/api/segments/{created['id']}", {"rules": REPEAT, "reason": "r"}),
                         caller.get(f"/api/segments/{created['id']}/members"),
                         caller.post("/api/segments/dry-run", {"rules": BUYERS}),
                         caller.post("/api/groups", {"name": "G"})):
            assert response.status_code == 401, response.content
            assert b"Buyers" not in response.content
    assert counts() == before


def test_ids_beyond_any_row_are_404_not_errors(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    huge = 10**30
    assert api.get(f"/api/segments/{huge}").status_code == 404
    assert api.get(f"/api/segments/{created['id']}/why/{huge}").status_code == 404
    # In a body an id is bounded like the bigint it names (the schema says so): past it, a 400 at its path.
    for path, body in [("/api/segments", {"name": "X", "rules": BUYERS, "group": huge}),
                       ("/api/segments/dry-run", {"rules": BUYERS, "segment": huge})]:
        error = assert_error(api.post(path, body), 400, "invalid_settings")
        assert [p["path"] for p in error["problems"]] == [list(body)[-1]]
    assert api.post("/api/segments", {"name": "X", "rules": BUYERS, "group": 2**63 - 1}).status_code == 404
    assert api.post("/api/segments/dry-run", {"rules": BUYERS, "segment": 2**63 - 1}).status_code == 404
    assert api.get(f"/api/segments/{created['id']}/members", after=str(2**63 - 1)).json()["members"] == []
