"""Offers as real discounts, written to devstore over HTTP: a playbook's offers become discount codes
limited to a native segment mirroring the tag, changed in place, deleted with the playbook's offer or
its segment's archiving (a discount never outlives its playbook); the experiences metafield the theme
reads; a run cut short resumes without duplicates; a failing Shopify backs off and loses nothing."""
from __future__ import annotations

import pytest
from django.utils import timezone

from devstore.theme_editor import app_object
from segments.experiences.models import NativeSegment, Offer, StorefrontSync
from segments.experiences.playbooks import playbook_update
from segments.experiences.publish import _claim, shop_storefront_publish, shops_with_due_storefront
from segments.experiences.tasks import storefront_publish_sweep_task
from segments.membership.definitions import segment_update
from segments.membership.models import Segment
from segments.shops.graphql import ShopSender

pytestmark = pytest.mark.django_db

CART = {"preset": "cart_value", "threshold": 100, "percent": 10}


@pytest.fixture
def segment(installed_shop) -> Segment:
    return Segment.objects.create(shop=installed_shop, name="Cart abandoners", handle="cart-abandoners")


def shopify(devstore, shop) -> tuple[list[dict], list[dict]]:
    """(native segments, discounts) as devstore holds them."""
    return (devstore.control("GET", f"/shops/{shop.domain}/segments")["segments"],
            devstore.control("GET", f"/shops/{shop.domain}/discounts")["discounts"])


def experiences(devstore, shop) -> dict:
    return app_object(devstore.store, shop.domain)["metafields"]["shopseg"]["experiences"]["value"]["experiences"]


def test_a_cart_value_playbook_becomes_two_codes_limited_to_a_native_segment(segment, devstore):
    shop = segment.shop
    playbook_update(segment=segment, changes={"experience": CART}, author="test")
    assert storefront_publish_sweep_task() == 1

    natives, discounts = shopify(devstore, shop)
    assert [(n["name"], n["query"]) for n in natives] == [
        ("shopseg: Cart abandoners", "customer_tags CONTAINS 'seg:cart-abandoners'")]
    by_code = {d["codes"][0]: d for d in discounts}
    assert set(by_code) == {"CART-ABANDONERS-FREESHIP", "CART-ABANDONERS-10OFF"}
    assert all(d["segment_ids"] == [natives[0]["id"]] and d["status"] == "ACTIVE" for d in discounts)
    assert by_code["CART-ABANDONERS-FREESHIP"]["kind"] == "FREE_SHIPPING"
    assert float(by_code["CART-ABANDONERS-FREESHIP"]["minimum_subtotal"]) == 100
    assert by_code["CART-ABANDONERS-10OFF"]["value"] == {"percentage": 0.1}
    assert sorted(Offer.objects.values_list("code", "state")) == [
        ("CART-ABANDONERS-10OFF", "live"), ("CART-ABANDONERS-FREESHIP", "live")]

    shown = experiences(devstore, shop)["seg:cart-abandoners"]
    assert shown["preset"] == "cart_value" and shown["below_heading"] == "10% off your cart"
    assert shown["codes"] == {"cart_free_shipping": "CART-ABANDONERS-FREESHIP", "cart_percent": "CART-ABANDONERS-10OFF"}

    assert shops_with_due_storefront() == [] and storefront_publish_sweep_task() == 0    # written: nothing due


def test_a_change_updates_in_place_and_removing_the_offer_deletes_it(segment, devstore):
    shop = segment.shop
    playbook_update(segment=segment, changes={"experience": CART, "offer_percent": 20}, author="test")
    assert shop_storefront_publish(shop_id=shop.pk) == ""
    before = {d["id"] for d in shopify(devstore, shop)[1]}
    assert len(before) == 3

    playbook_update(segment=segment, changes={"experience": {**CART, "percent": 15}}, author="test")
    assert shop_storefront_publish(shop_id=shop.pk) == ""
    natives, discounts = shopify(devstore, shop)
    assert {d["id"] for d in discounts} == before                       # the same discounts, changed
    assert sorted(c for d in discounts for c in d["codes"]) == [
        "CART-ABANDONERS-15OFF", "CART-ABANDONERS-FREESHIP", "CART-ABANDONERS-MEMBERS"]

    playbook_update(segment=segment, changes={"experience": {}, "offer_percent": None}, author="test")
    assert shop_storefront_publish(shop_id=shop.pk) == ""
    assert shopify(devstore, shop) == ([], [])
    assert set(Offer.objects.values_list("state", flat=True)) == {"ended"} and not NativeSegment.objects.exists()
    assert experiences(devstore, shop) == {}


def test_archiving_the_segment_ends_its_discounts(segment, devstore, django_capture_on_commit_callbacks):
    from segments.membership.models import SegmentVersion
    SegmentVersion.objects.create(segment=segment, number=segment.current_version, rules={"version": 1, "include": {
        "metric": "orders_count", "op": "gte", "value": 1}}, summary="")
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    assert shop_storefront_publish(shop_id=segment.shop_id) == ""
    assert len(shopify(devstore, segment.shop)[1]) == 1

    StorefrontSync.objects.update(published_at=timezone.now() - timezone.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        segment_update(segment=segment, status="archived", author="test")
    assert shops_with_due_storefront() == [segment.shop_id]          # the segment changed since the write
    assert storefront_publish_sweep_task() == 1
    assert shopify(devstore, segment.shop) == ([], [])
    assert list(Offer.objects.values_list("code", "state")) == [("CART-ABANDONERS-MEMBERS", "ended")]  # for its lift


def test_a_segment_change_that_alters_nothing_sends_nothing(segment, monkeypatch):
    sent = []
    real = ShopSender.call
    monkeypatch.setattr(ShopSender, "call", lambda self, query, *a, **k: sent.append(query) or real(self, query, *a, **k))
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    assert shop_storefront_publish(shop_id=segment.shop_id) == "" and len(sent) == 5   # segment, code, metafield
    Segment.objects.filter(pk=segment.pk).update(member_count=5, updated_at=timezone.now())    # a recompute
    assert shops_with_due_storefront() == [segment.shop_id]
    assert shop_storefront_publish(shop_id=segment.shop_id) == ""
    assert len(sent) == 5 and shops_with_due_storefront() == []
    Segment.objects.filter(pk=segment.pk).update(name="Left carts", updated_at=timezone.now())   # a rename is sent
    assert shop_storefront_publish(shop_id=segment.shop_id) == "" and len(sent) > 5


def test_a_create_whose_answer_was_lost_is_adopted_not_made_twice(segment, devstore):
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    assert shop_storefront_publish(shop_id=segment.shop_id) == ""
    (discount,) = shopify(devstore, segment.shop)[1]
    # The worker died after Shopify created the discount, before the row was saved.
    Offer.objects.update(discount_id="", synced=None, state="pending")
    StorefrontSync.objects.update(fingerprint="", wanted_at=timezone.now())
    assert shop_storefront_publish(shop_id=segment.shop_id) == ""
    assert [d["id"] for d in shopify(devstore, segment.shop)[1]] == [discount["id"]]
    assert Offer.objects.get().discount_id.endswith(str(discount["id"]).rsplit("/", 1)[-1])


def test_a_code_the_merchant_already_uses_is_refused_with_why_and_theirs_kept(segment, devstore, installed_shop):
    from segments.shops.graphql import shop_graphql
    from segments.experiences.offers import BASIC_CREATE
    theirs = shop_graphql(shop_id=installed_shop.pk, query=BASIC_CREATE, variables={"discount": {
        "title": "Staff picks", "code": "CART-ABANDONERS-MEMBERS",
        "customerGets": {"value": {"percentage": 0.5}, "items": {"all": True}}}}).data
    assert theirs["discountCodeBasicCreate"]["codeDiscountNode"]["id"]
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    assert shop_storefront_publish(shop_id=segment.shop_id) == ""
    offer = Offer.objects.get()
    assert offer.state == "refused" and "unique" in offer.error
    (kept,) = shopify(devstore, segment.shop)[1]
    assert kept["title"] == "Staff picks" and kept["value"] == {"percentage": 0.5}


def test_a_failing_shopify_backs_off_and_loses_nothing(segment, devstore, monkeypatch):
    shop = segment.shop
    monkeypatch.setattr("segments.experiences.publish.MAX_TRANSIENT_WAIT", 0.0)
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "error5xx", "params": {"count": 50}})
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    stopped = shop_storefront_publish(shop_id=shop.pk)
    assert stopped.startswith("ShopifyTransientError")
    sync = StorefrontSync.objects.get()
    assert (sync.published_at, sync.attempts) == (None, 1) and sync.next_attempt_at > timezone.now()
    assert shops_with_due_storefront() == []                               # backing off
    devstore.control("DELETE", "/faults", json={"shop": shop.domain, "kind": "error5xx"})
    StorefrontSync.objects.update(next_attempt_at=timezone.now())
    assert shop_storefront_publish(shop_id=shop.pk) == ""
    assert [d["codes"] for d in shopify(devstore, shop)[1]] == [["CART-ABANDONERS-MEMBERS"]]


def test_one_run_at_a_time_and_a_killed_runs_lease_runs_out(segment):
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    assert _claim(segment.shop_id) is not None
    assert _claim(segment.shop_id) is None                      # leased to the first run
    StorefrontSync.objects.update(next_attempt_at=timezone.now())  # what LEASE's passing does for a killed run
    assert _claim(segment.shop_id) is not None


def test_an_uninstalled_shop_is_not_written(segment, devstore):
    from segments.shops.models import ShopStatus
    playbook_update(segment=segment, changes={"offer_percent": 10}, author="test")
    type(segment.shop).objects.filter(pk=segment.shop_id).update(status=ShopStatus.UNINSTALLED)
    assert shops_with_due_storefront() == [] and storefront_publish_sweep_task() == 0
    assert shopify(devstore, segment.shop) == ([], [])
