"""Anonymous visitors in segments: only segments whose rules read browsing take them, judged as
customers without history; the rollup's and the clock's marks move them within a run; signing in
takes a visitor out (the customer speaks for it from then on); holdouts, exclusive groups, counts."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from segments.membership.clock import segments_time_sweep
from segments.membership.models import ExclusiveGroup, Segment, SegmentClock, SegmentVersion, VisitorMembership
from segments.membership.visitors import dirty_visitors_refresh, visitor_segments_recompute
from segments.mirror.models import Customer
from segments.storefront.models import Visitor, VisitorDay
from segments.membership.tasks import dirty_visitors_refresh_task
from segments.storefront.tasks import visitor_days_rollup_task
from tests.segments.storefront.conftest import batch, event, pixel, post  # noqa: F401

pytestmark = pytest.mark.django_db

VIEWERS = {"version": 1, "include": {"metric": "product_views", "op": "gte", "value": 3, "window": {"last_days": 7}}}
NON_BUYING_VIEWERS = {"version": 1, "include": {"all": [VIEWERS["include"],
                                                        {"metric": "orders_count", "op": "eq", "value": 0}]}}
BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "eq", "value": 0}}   # purchases alone
NEW = {"version": 1, "include": {"metric": "days_since_first_visit", "op": "lte", "value": 7}}


def segment(shop, handle: str, rules: dict, **fields) -> Segment:
    made = Segment.objects.create(shop=shop, name=handle, handle=handle, **fields)
    SegmentVersion.objects.create(segment=made, number=1, rules=rules)
    return made


def views(client, pixel, client_id: str, n: int, *, customer: str | None = None, ago=dt.timedelta(hours=1)) -> None:
    post(client, batch(pixel, [event("product_viewed", client=client_id, seq=i, customer=customer,
                                     ago=ago - dt.timedelta(seconds=i)) for i in range(n)]))


def members(seg: Segment) -> dict[str, bool]:
    """client id -> holdout, of the segment's visitors."""
    return {Visitor.objects.get(pk=m.visitor_id).client_id: m.holdout
            for m in VisitorMembership.objects.filter(segment=seg)}


def settle() -> None:
    """What beat runs every 2 s: the rollup, then the marked visitors' segments."""
    while visitor_days_rollup_task() or dirty_visitors_refresh_task():
        pass


def test_browsing_segments_take_anonymous_visitors_as_customers_without_history(client, pixel):
    shop = pixel.shop
    views(client, pixel, "keen", 4)
    views(client, pixel, "idle", 1)
    settle()
    viewers, non_buying, buyers = (segment(shop, "viewers", VIEWERS), segment(shop, "non-buying", NON_BUYING_VIEWERS),
                                   segment(shop, "no-orders", BUYERS))
    outcome = visitor_segments_recompute(shop=shop)
    assert outcome == {"entered": 2, "exited": 0}
    assert members(viewers) == members(non_buying) == {"keen": False}       # no orders: a non-buyer
    assert members(buyers) == {}          # purchases alone: every visitor or none, so none
    assert [(s.visitor_count, s.visitor_holdout_count) for s in Segment.objects.order_by("pk")] == [
        (1, 0), (1, 0), (0, 0)]
    assert visitor_segments_recompute(shop=shop) == {"entered": 0, "exited": 0}     # nothing changed


def test_the_rollups_marks_move_visitors_and_signing_in_takes_them_out(client, pixel):
    shop = pixel.shop
    Customer.objects.create(shop=shop, shopify_id=7_000_000_001)
    viewers = segment(shop, "viewers", VIEWERS)
    views(client, pixel, "shopper", 2)
    settle()
    assert members(viewers) == {}
    views(client, pixel, "shopper", 2, ago=dt.timedelta(minutes=30))     # a fourth view: in
    settle()
    assert members(viewers) == {"shopper": False}
    assert Segment.objects.get(pk=viewers.pk).visitor_count == 1
    views(client, pixel, "shopper", 1, customer="7000000001", ago=dt.timedelta(minutes=5))   # signs in
    settle()
    assert Visitor.objects.get(client_id="shopper").customer_id is not None
    assert members(viewers) == {} and Segment.objects.get(pk=viewers.pk).visitor_count == 0
    assert not Visitor.objects.filter(dirty_at__isnull=False).exists()


def test_holdouts_exclusive_groups_and_an_edit_that_drops_browsing(client, pixel):
    shop = pixel.shop
    for n in range(40):
        views(client, pixel, f"v{n}", 5 if n % 2 else 3)
    settle()
    group = ExclusiveGroup.objects.create(shop=shop, name="Interest")
    high = segment(shop, "high", {"version": 1, "include": {"metric": "product_views", "op": "gte", "value": 5}},
                   group=group, priority=2)
    low = segment(shop, "low", VIEWERS, group=group, priority=1, holdout_percent=50)
    visitor_segments_recompute(shop=shop)
    assert len(members(high)) == 20 and len(members(low)) == 20            # the higher tier wins
    held = members(low)
    assert 0 < sum(held.values()) < 20                                      # about half held out, fixed
    assert Segment.objects.get(pk=low.pk).visitor_holdout_count == sum(held.values())
    visitor_segments_recompute(shop=shop)
    assert members(low) == held
    SegmentVersion.objects.create(segment=low, number=2, rules=BUYERS)
    Segment.objects.filter(pk=low.pk).update(current_version=2)
    visitor_segments_recompute(shop=shop, segments=[Segment.objects.get(pk=low.pk)])
    assert members(low) == {} and Segment.objects.get(pk=low.pk).visitor_count == 0


def test_the_time_sweep_marks_a_visitor_who_is_no_longer_new(client, pixel):
    shop = pixel.shop
    new = segment(shop, "new", NEW)
    views(client, pixel, "first-timer", 1)
    settle()
    visitor_segments_recompute(shop=shop)
    assert members(new) == {"first-timer": False}
    first = VisitorDay.objects.get().first_at
    # The first visit is 8 days old from the shop's midnight 8 days after its local date.
    zone = ZoneInfo(shop.iana_timezone)
    crosses = dt.datetime.combine(first.astimezone(zone).date() + dt.timedelta(days=8), dt.time(), zone)
    SegmentClock.objects.create(shop=shop, swept_until=crosses - dt.timedelta(minutes=1))
    assert segments_time_sweep(shop=shop, now=crosses + dt.timedelta(minutes=1))["visitors"] == 1
    assert Visitor.objects.get().dirty_at is not None
    while dirty_visitors_refresh():
        pass
    assert members(new) == {"first-timer": False}      # the run decides at the real now: still new
    visitor_segments_recompute(shop=shop, now=crosses + dt.timedelta(minutes=1))
    assert members(new) == {}
