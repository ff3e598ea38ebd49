"""The dry-run names the segments that already hold (nearly) the customers the rules select, so the
builder can warn before a duplicate is saved; computed in one statement, writing nothing.

Stock (see conftest): customer 1 has one order, 2 and 3 two each, 4-6 none."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from segments.membership.models import Membership, Segment, SegmentStatus
from segments.membership.overlap import segment_overlaps, shared_sql
from tests.segments.engine.test_metrics_table import Mirror
from tests.segments.web.api.conftest import BUYERS, REPEAT, counts, create

pytestmark = pytest.mark.django_db


def overlaps(api, rules, segment=None) -> list[dict]:
    body = {"rules": rules} if segment is None else {"rules": rules, "segment": segment}
    response = api.post("/api/segments/dry-run", body)
    assert response.status_code == 200, response.content
    return response.json()["overlaps"]


def test_rules_selecting_an_existing_segments_members_name_it_as_the_same(api, django_capture_on_commit_callbacks):
    repeat = create(api, django_capture_on_commit_callbacks, {"name": "Repeat buyers", "rules": REPEAT})
    buyers = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    before = counts()
    # customers 2 and 3: exactly Repeat buyers' members, and all of them are in Buyers too
    assert overlaps(api, REPEAT) == [
        {"segment": repeat["id"], "name": "Repeat buyers", "shared": 2, "members": 2, "share": 1.0, "same": True},
        {"segment": buyers["id"], "name": "Buyers", "shared": 2, "members": 3, "share": 1.0, "same": False},
    ]
    assert counts() == before                                     # a preview writes nothing


def test_a_segment_with_under_90_percent_of_the_customers_is_not_named(api, django_capture_on_commit_callbacks):
    create(api, django_capture_on_commit_callbacks, {"name": "Repeat buyers", "rules": REPEAT})
    buyers = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    # customers 1-3: Repeat buyers has two of the three (67%)
    assert [o["segment"] for o in overlaps(api, BUYERS)] == [buyers["id"]]
    # nobody selected: nothing to compare
    nobody = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 50}}
    assert overlaps(api, nobody) == []


def test_the_segment_being_edited_and_archived_segments_are_left_out(api, django_capture_on_commit_callbacks):
    repeat = create(api, django_capture_on_commit_callbacks, {"name": "Repeat buyers", "rules": REPEAT})
    buyers = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    assert [o["segment"] for o in overlaps(api, REPEAT, segment=repeat["id"])] == [buyers["id"]]
    assert [o["segment"] for o in api.post(f"/api/segments/{repeat['id']}/dry-run",
                                           {"rules": REPEAT}).json()["overlaps"]] == [buyers["id"]]
    Segment.objects.filter(pk=buyers["id"]).update(status=SegmentStatus.ARCHIVED)
    assert overlaps(api, REPEAT, segment=repeat["id"]) == []


def test_another_shops_segments_are_never_named(api, other, django_capture_on_commit_callbacks):
    _, their_api = other
    create(their_api, django_capture_on_commit_callbacks, {"name": "Their repeat buyers", "rules": REPEAT})
    assert overlaps(api, REPEAT) == []


def test_from_90_percent_in_one_statement_whatever_the_number_of_segments(shop):
    m = Mirror(shop)
    ids = [m.customer(sid) for sid in range(11, 21)]                # ten candidates
    candidates = "(SELECT id AS customer_id FROM segments_customer WHERE shop_id = %(s)s AND shopify_id > 10)"
    nine = Segment.objects.create(shop=shop, name="Nine of ten", handle="nine")
    eight = Segment.objects.create(shop=shop, name="Eight of ten", handle="eight")
    for segment, members in ((nine, ids[:9]), (eight, ids[:8] + [shop.customer_pks[1]])):
        Membership.objects.bulk_create(Membership(shop=shop, segment=segment, customer_id=pk, version=1,
                                                  entered_at=timezone.now())
                                       for pk in members)
    with CaptureQueriesContext(connection) as queries:
        with connection.cursor() as cursor:   # counted where the candidates are selected, as the dry-run does
            cursor.execute(shared_sql(candidates=candidates, shop_param="%(s)s"), {"s": shop.pk})
            shared = dict(cursor.fetchall())
        found = segment_overlaps(shop=shop, shared=shared, size=10)
    assert len(queries) == 2
    assert [(o.name, o.shared, o.members, o.share, o.same) for o in found] == [("Nine of ten", 9, 9, 0.9, False)]
