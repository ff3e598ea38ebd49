"""Tag sync against devstore over HTTP: tags follow membership as a diff, in batched aliased
requests, never touching the merchant's tags; holdouts get no segment tag; deleted customers are
dropped; uninstalled shops stop; expired tokens are refreshed."""
from __future__ import annotations

import pytest

from segments.membership.models import Membership, TagChange
from segments.shops.models import Shop, ShopStatus
from segments.tags.models import CustomerTag, LedgerState, OwnedTag, TagAudit, TagResult
from segments.tags.sync import shop_tags_sync
from segments.tags.transport import mutation_document
from tests.segments.tags.conftest import BUYERS, ONE_ORDER

pytestmark = pytest.mark.django_db


def test_tags_follow_membership_and_merchant_tags_survive(tagstore):
    # given three customers with the merchant's own tags, two of whom ordered once
    a, b, c = tagstore.customers(3, tags=["VIP-by-hand", "wholesale"])
    tagstore.order(a)
    tagstore.order(b)
    tagstore.segment("one-timers", ONE_ORDER)
    tagstore.recompute()
    # when the outbox is synced
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then the members carry the segment tag beside the merchant's, and the other customer nothing new
    assert tagstore.tags(a) == ["VIP-by-hand", "wholesale", "seg:one-timers"]
    assert tagstore.tags(b) == ["VIP-by-hand", "wholesale", "seg:one-timers"]
    assert tagstore.tags(c) == ["VIP-by-hand", "wholesale"]
    assert (report.calls, report.requests) == (2, 1)
    assert tagstore.pending() == 0
    assert set(CustomerTag.objects.filter(shop=tagstore.shop).values_list("key", "state")) == {
        ("seg:one-timers", LedgerState.ACTIVE)}
    assert OwnedTag.objects.filter(shop=tagstore.shop).values_list("key", flat=True).get() == "seg:one-timers"
    # the mirror's last-known tags include our write at once
    assert tagstore.shop.customers.get(shopify_id=a).tags == ["VIP-by-hand", "wholesale", "seg:one-timers"]
    audits = TagAudit.objects.filter(shop=tagstore.shop)
    assert sorted(audits.values_list("customer_shopify_id", "tag", "add", "result", "source")) == sorted(
        [(a, "seg:one-timers", True, "applied", "membership"), (b, "seg:one-timers", True, "applied", "membership")])
    assert {x.segment_version for x in audits} == {1} and all(x.segment_id for x in audits)

    # when a's second order takes them out of the segment
    tagstore.order(a, days_ago=5)
    tagstore.recompute(customer_ids=[tagstore.pk(a)])
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then only our tag goes; the merchant's stay
    assert tagstore.tags(a) == ["VIP-by-hand", "wholesale"]
    assert tagstore.tags(b) == ["VIP-by-hand", "wholesale", "seg:one-timers"]
    assert report.calls == 1
    assert not CustomerTag.objects.filter(customer__shopify_id=a).exists()
    assert TagAudit.objects.filter(customer_shopify_id=a, add=False, result="applied").count() == 1


def test_an_empty_diff_costs_no_call(tagstore):
    # given a member already synced
    (a,) = tagstore.customers(1)
    tagstore.order(a)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    # when the customer leaves and comes back before the next sync (two outbox rows, no net change)
    customer = tagstore.pk(a)
    segment = tagstore.shop.segments.get()
    TagChange.objects.create(shop=tagstore.shop, customer_id=customer, tag="seg:buyers", add=False,
                             created_at=segment.created_at, segment=segment, version=1)
    TagChange.objects.create(shop=tagstore.shop, customer_id=customer, tag="seg:buyers", add=True,
                             created_at=segment.created_at, segment=segment, version=1)
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then nothing is sent and the rows are done
    assert (report.calls, report.requests) == (0, 0)
    assert tagstore.pending() == 0
    assert set(TagChange.objects.filter(customer_id=customer).values_list("result", flat=True)) == {"applied", "noop"}


def test_many_customers_share_requests_sized_by_cost(tagstore, settings):
    # given 150 new members
    sids = tagstore.customers(150)
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    # when synced
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then 99 aliased mutations per request (990 points, under the 1,000 cap): two requests, 1,500 points
    assert (report.calls, report.requests, report.points) == (150, 2, 1500)
    assert all("seg:buyers" in tagstore.tags(sid) for sid in sids[::25])


def test_mutation_document_aliases_each_customer():
    text = mutation_document([False, True])
    assert text == ("mutation TagSync($i0: ID!, $t0: [String!]!, $i1: ID!, $t1: [String!]!) { "
                    "m0: tagsRemove(id: $i0, tags: $t0) { node { id } userErrors { field message } } "
                    "m1: tagsAdd(id: $i1, tags: $t1) { node { id } userErrors { field message } } }")
    assert "customerUpdate" not in text


def test_holdout_members_get_no_segment_tag(tagstore):
    # given a segment with a 50% holdout over 40 buyers
    sids = tagstore.customers(40)
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS, holdout_percent=50)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    held = set(Membership.objects.filter(holdout=True).values_list("customer__shopify_id", flat=True))
    assert 0 < len(held) < 40
    # then holdout members never carry the segment tag; the others do
    for sid in sids:
        assert ("seg:buyers" in tagstore.tags(sid)) == (sid not in held)


def test_a_per_segment_holdout_tag(tagstore):
    # given a shop that tags holdout members `seg:<handle>-control`
    Shop.objects.filter(pk=tagstore.shop.pk).update(holdout_tag="seg:{handle}-control")
    sids = tagstore.customers(30)
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS, holdout_percent=50)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    held = set(Membership.objects.filter(holdout=True).values_list("customer__shopify_id", flat=True))
    # then each customer carries exactly one of the two
    for sid in sids:
        assert tagstore.tags(sid) == (["seg:buyers-control"] if sid in held else ["seg:buyers"])


def test_a_custom_prefix(tagstore):
    Shop.objects.filter(pk=tagstore.shop.pk).update(tag_prefix="aud-")
    (a,) = tagstore.customers(1)
    tagstore.order(a)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert tagstore.tags(a) == ["aud-buyers"]


def test_a_customer_deleted_in_shopify_is_dropped(tagstore):
    # given two members, one of whom Shopify no longer has
    a, b = tagstore.customers(2)
    tagstore.order(a)
    tagstore.order(b)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    with tagstore.devstore.store.tx() as conn:
        conn.execute("DELETE FROM customers WHERE id = ?", (b,))
    # when synced
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then the other is tagged, the deleted one's change is dropped (not retried) and recorded
    assert tagstore.tags(a) == ["seg:buyers"]
    assert tagstore.pending() == 0
    assert TagChange.objects.get(customer__shopify_id=b).result == TagResult.CUSTOMER_GONE
    assert TagAudit.objects.get(customer_shopify_id=b).result == TagResult.CUSTOMER_GONE
    assert not CustomerTag.objects.filter(customer__shopify_id=b).exists()
    assert report.results["customer_gone"] == 1


def test_an_expired_token_is_refreshed(tagstore, settings):
    (a,) = tagstore.customers(1)
    tagstore.order(a)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    before = Shop.objects.get(pk=tagstore.shop.pk).access_token
    tagstore.devstore.control("POST", f"/shops/{tagstore.shop.domain}/tokens/{settings.SHOPIFY_API_KEY}/expire")
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert tagstore.tags(a) == ["seg:buyers"]
    assert Shop.objects.get(pk=tagstore.shop.pk).access_token != before


def test_an_uninstalled_shop_stops(tagstore):
    (a,) = tagstore.customers(1)
    tagstore.order(a)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    Shop.objects.filter(pk=tagstore.shop.pk).update(status=ShopStatus.UNINSTALLED)
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    assert report.stopped == "unavailable" and report.calls == 0
    assert tagstore.tags(a) == []
    assert tagstore.pending() == 1
