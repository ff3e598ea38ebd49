"""The optional JSON metafield: the customer's segments and since when, written beside the tags,
read back from devstore over GraphQL."""
import json

import pytest

from segments.membership.models import Membership
from segments.shops.preferences import shop_settings_update
from segments.shops.tokens import with_shop_client
from segments.tags.metafield import KEY, NAMESPACE
from segments.tags.sync import shop_tags_sync
from tests.segments.tags.conftest import BUYERS, ONE_ORDER

pytestmark = pytest.mark.django_db

READ = """query Read($id: ID!, $ns: String!, $key: String!) {
  customer(id: $id) { metafield(namespace: $ns, key: $key) { value type } }
}"""


def metafield(tagstore, sid: int):
    def call(client):
        data = client.graphql(READ, {"id": f"gid://shopify/Customer/{sid}", "ns": NAMESPACE, "key": KEY}).data
        return data["customer"]["metafield"]
    found = with_shop_client(shop_id=tagstore.shop.pk, call=call)
    return None if found is None else (found["type"], json.loads(found["value"]))


def test_no_metafield_unless_the_merchant_turns_it_on(tagstore):
    (a,) = tagstore.customers(1)
    tagstore.order(a)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert tagstore.tags(a) == ["seg:buyers"]
    assert metafield(tagstore, a) is None


def test_turning_it_on_writes_every_member_and_changes_follow(tagstore):
    a, b, c = tagstore.customers(3, tags=["wholesale"])
    tagstore.order(a)
    tagstore.order(b)
    tagstore.segment("buyers", BUYERS)
    tagstore.segment("one-timers", ONE_ORDER)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)

    shop_settings_update(shop=tagstore.shop, changes={"tag_metafield": True})
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    assert report.results["metafields_written"] == 2           # the two members; c is in nothing
    since = Membership.objects.get(customer__shopify_id=a, segment__handle="buyers").entered_at.isoformat()
    kind, value = metafield(tagstore, a)
    assert kind == "json"
    assert value == [{"segment": "buyers", "tag": "seg:buyers", "since": since},
                     {"segment": "one-timers", "tag": "seg:one-timers", "since": value[1]["since"]}]
    assert metafield(tagstore, c) is None
    assert tagstore.tags(a) == ["wholesale", "seg:buyers", "seg:one-timers"]   # tags unchanged by it

    # a second order takes a out of one-timers: tags and metafield follow in the same run
    tagstore.order(a, days_ago=5)
    tagstore.recompute(customer_ids=[tagstore.pk(a)])
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert tagstore.tags(a) == ["wholesale", "seg:buyers"]
    assert [s["segment"] for s in metafield(tagstore, a)[1]] == ["buyers"]
    assert [s["segment"] for s in metafield(tagstore, b)[1]] == ["buyers", "one-timers"]
