"""Every route of the JSON API, over real session tokens: without a valid token each is a 401 in our
error shape; with another shop's token each of this shop's objects is a 404 and nothing of it shows;
malformed or oversized bodies are refused (400 / 413) with nothing saved. The table below must name
every route of segments.web.urls_api, so a new route cannot go untested."""
from __future__ import annotations

import time

import jwt
import pytest
from django.utils import timezone

from segments.experiences.models import Playbook
from segments.experiences.playbooks import playbook_update
from segments.membership.models import ExclusiveGroup, Membership, MembershipEvent, Segment, SegmentVersion, TagChange
from segments.mirror.models import ComplianceRequest, Customer
from segments.privacy.compliance import compliance_data_request
from segments.shops.models import Shop
from segments.web import urls_api
from tests.segments.web.api.conftest import BUYERS, REPEAT, Api, assert_error, create

pytestmark = pytest.mark.django_db

SECRET_NAME = "Zanzibar buyers"       # appears in no answer to another shop or to a caller without a token
SECRET_GOAL = "Quetzal goal"


@pytest.fixture
def world(api, shop, django_capture_on_commit_callbacks):
    """This shop's objects every route can be asked about: a segment with members, its playbook, a
    data request with its export, a failed tag change and an exclusive group."""
    segment = create(api, django_capture_on_commit_callbacks, {"name": SECRET_NAME, "rules": BUYERS})
    playbook_update(segment=Segment.objects.get(pk=segment["id"]), changes={"goal": SECRET_GOAL}, author="1")
    request = compliance_data_request(shop_domain=shop.domain, payload={
        "shop_id": 1, "shop_domain": shop.domain, "customer": {"id": 2, "email": "c2@example.com", "phone": None},
        "orders_requested": [], "data_request": {"id": 9001}})
    change = TagChange.objects.create(shop=shop, customer_id=shop.customer_pks[1], tag="seg:x", add=True,
                                      created_at=timezone.now(), processed_at=timezone.now(), result="failed",
                                      attempts=10, last_error="gave up")
    group = ExclusiveGroup.objects.create(shop=shop, name="Tiers")
    return {"segment": segment["id"], "customer": shop.customer_pks[2], "request": request.pk, "change": change.pk,
            "group": group.pk}


def routes(w: dict) -> list[tuple[str, str, str, object]]:
    """(route name, method, path, JSON body or None) for every method of every route."""
    seg, cust = w["segment"], w["customer"]
    return [
        ("api-shop", "get", "/api/shop", None),
        ("api-settings", "get", "/api/settings", None),
        ("api-settings", "patch", "/api/settings", {"drift_policy": "report"}),
        ("api-compliance", "get", "/api/compliance", None),
        ("api-compliance-export", "get", f"/api/compliance/{w['request']}/export", None),
        ("api-metrics", "get", "/api/metrics", None),
        ("api-templates", "get", "/api/templates", None),
        ("api-segments", "get", "/api/segments", None),
        ("api-segments", "post", "/api/segments", {"name": "New", "rules": BUYERS}),
        ("api-segment-dry-run", "post", "/api/segments/dry-run", {"rules": REPEAT, "segment": seg}),
        ("api-segment", "get", f"/api/segments/{seg}", None),
        ("api-segment", "patch", f"/api/segments/{seg}", {"rules": REPEAT, "reason": "tighter"}),
        ("api-segment", "delete", f"/api/segments/{seg}", None),
        ("api-segment-edit-dry-run", "post", f"/api/segments/{seg}/dry-run", {"rules": REPEAT}),
        ("api-segment-versions", "get", f"/api/segments/{seg}/versions", None),
        ("api-segment-history", "get", f"/api/segments/{seg}/history", None),
        ("api-segment-members", "get", f"/api/segments/{seg}/members", None),
        ("api-segment-why", "get", f"/api/segments/{seg}/why/{cust}", None),
        ("api-segment-playbook", "get", f"/api/segments/{seg}/playbook", None),
        ("api-segment-playbook", "put", f"/api/segments/{seg}/playbook", {"goal": "theirs"}),
        ("api-segment-playbook-markdown", "get", f"/api/segments/{seg}/playbook.md", None),
        ("api-playbooks", "get", "/api/playbooks", None),
        ("api-groups", "get", "/api/groups", None),
        ("api-groups", "post", "/api/groups", {"name": "Other tiers"}),
        ("api-segment-snippet", "get", f"/api/segments/{seg}/snippet", None),
        ("api-sync", "get", "/api/sync", None),
        ("api-sync-audit", "get", "/api/sync/audit", None),
        ("api-sync-retry", "post", "/api/sync/retry", {"ids": [w["change"]]}),
    ]


# Routes that name one of this shop's objects in their path: another shop gets a 404.
OBJECT_ROUTES = {"api-compliance-export", "api-segment", "api-segment-edit-dry-run", "api-segment-versions",
                 "api-segment-history", "api-segment-members", "api-segment-why", "api-segment-playbook",
                 "api-segment-playbook-markdown", "api-segment-snippet"}
PUBLIC_ROUTES = {"api-schema"}
BODY_METHODS = ("post", "put", "patch")


def state() -> dict:
    """Everything a request could change, as plain values."""
    return {
        "segments": list(Segment.objects.order_by("pk").values()),
        "versions": SegmentVersion.objects.count(),
        "members": sorted(Membership.objects.values_list("segment_id", "customer_id")),
        "events": MembershipEvent.objects.count(),
        "changes": list(TagChange.objects.order_by("pk").values()),
        "groups": list(ExclusiveGroup.objects.order_by("pk").values()),
        "playbooks": list(Playbook.objects.order_by("pk").values()),
        "shops": list(Shop.objects.order_by("pk").values()),
        "compliance": ComplianceRequest.objects.count(),
        "customers": Customer.objects.count(),
    }


def test_the_table_covers_every_route_and_method(world):
    """A route added to urls_api without a row here fails this test."""
    table = routes(world)
    named = {p.name for p in urls_api.urlpatterns} - PUBLIC_ROUTES
    assert {name for name, *_ in table} == named
    for pattern in urls_api.urlpatterns:
        if pattern.name in PUBLIC_ROUTES:
            continue
        view = pattern.callback.view_class
        methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
        assert {m for name, m, *_ in table if name == pattern.name} == methods, pattern.name


def test_without_a_valid_session_token_every_route_is_401(client, devstore, settings, shop, world,
                                                          django_capture_on_commit_callbacks):
    now = int(time.time())
    forged = jwt.encode({"iss": f"https://{shop.domain}/admin", "dest": f"https://{shop.domain}",
                         "aud": settings.SHOPIFY_API_KEY, "sub": "1", "exp": now + 60, "nbf": now, "jti": "x",
                         "sid": "y"}, "w" * 40, algorithm="HS256")
    expired = jwt.encode({"iss": f"https://{shop.domain}/admin", "dest": f"https://{shop.domain}",
                          "aud": settings.SHOPIFY_API_KEY, "sub": "1", "exp": now - 600, "nbf": now - 700,
                          "jti": "x", "sid": "y"}, settings.SHOPIFY_API_SECRET, algorithm="HS256")
    before = state()
    with django_capture_on_commit_callbacks() as callbacks:
        for caller in (Api(client, None), Api(client, ""), Api(client, forged), Api(client, expired)):
            for name, method, path, body in routes(world):
                response = caller.call(method, path, body)
                error = assert_error(response, 401)
                assert error["code"] in ("not_authenticated", "authentication_failed"), (name, method, error)
                assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
                assert SECRET_NAME.encode() not in response.content and b"c2@example.com" not in response.content
    assert callbacks == []
    assert state() == before


def test_another_shops_token_gets_404_for_this_shops_objects_and_never_their_data(
        shop, other, world, django_capture_on_commit_callbacks):
    other_shop, theirs = other
    before = state()
    with django_capture_on_commit_callbacks() as callbacks:
        for name, method, path, body in routes(world):
            if name not in OBJECT_ROUTES:
                continue
            response = theirs.call(method, path, body)
            assert_error(response, 404, "not_found")
            assert SECRET_NAME.encode() not in response.content and SECRET_GOAL.encode() not in response.content
    assert callbacks == []
    assert state() == before


def test_another_shops_lists_hold_only_their_own_rows(shop, other, world):
    other_shop, theirs = other
    for name, method, path, _ in routes(world):
        if method != "get" or name in OBJECT_ROUTES:
            continue
        response = theirs.get(path)
        assert response.status_code == 200, (path, response.content)
        assert SECRET_NAME.encode() not in response.content and SECRET_GOAL.encode() not in response.content
        assert shop.domain.encode() not in response.content, path
    assert theirs.get("/api/segments").json()["segments"] == []
    assert theirs.get("/api/playbooks").json()["playbooks"] == []
    assert theirs.get("/api/compliance").json()["requests"] == []
    assert theirs.get("/api/groups").json()["groups"] == []
    assert theirs.get("/api/shop").json()["domain"] == other_shop.domain


@pytest.mark.parametrize("raw, status, code", [
    (b"x" * (300 * 1024), 413, "payload_too_large"),
    (b"{\"name\": ", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b"\xff\xfe", 400, "invalid_json"),
    (b"{\"n\": NaN}", 400, "invalid_json"),
    (b"{\"no_such_field\": 1}", 400, "invalid_settings"),
], ids=["oversized", "truncated", "array", "not-utf8", "nan", "unknown-field"])
def test_malformed_and_oversized_bodies_are_refused_and_save_nothing(api, world, raw, status, code,
                                                                     django_capture_on_commit_callbacks):
    before = state()
    with django_capture_on_commit_callbacks() as callbacks:
        for name, method, path, _ in routes(world):
            if method not in BODY_METHODS:
                continue
            error = assert_error(api.call(method, path, raw=raw), status, code)
            if code == "invalid_settings":
                assert error["problems"][0]["path"] == "no_such_field", (name, error)
    assert callbacks == []
    assert state() == before
