"""Daily KPI snapshots on a small real shop, checked against an independent computation: members
replayed from the whole event log (the service undoes later events from the current memberships),
orders summed in Python by shop-local day."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from segments.measurement.models import SegmentKpiSnapshot
from segments.measurement.snapshots import kpi_snapshot_day, kpi_snapshots_backfill
from segments.membership.definitions import segment_update
from segments.membership.models import MembershipEvent, Segment
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Order, VariantCost
from segments.shops.calendar import shop_day_bounds, shop_today
from tests.segments.measurement.conftest import make_segment

pytestmark = pytest.mark.django_db

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
BIG = {"version": 1, "include": {"metric": "total_spent", "op": "gte", "value": 100}}
BIGGER = {"version": 1, "include": {"metric": "total_spent", "op": "gte", "value": 200}}
COSTED, UNCOSTED = 41, 42       # variants: one with a unit cost of 12.50, one without


def members_at(segment, end: dt.datetime) -> dict[int, bool]:
    """{customer pk: holdout} in the segment at `end`, replaying every event from the start."""
    state: dict[int, bool] = {}
    for e in MembershipEvent.objects.filter(segment=segment, at__lt=end).order_by("at", "id"):
        if e.entered:
            state[e.customer_id] = e.holdout
        else:
            state.pop(e.customer_id, None)
    return state


def expected(segment, shop, day) -> dict:
    start, end = shop_day_bounds(shop, day)
    members = members_at(segment, end)
    live = [o for o in Order.objects.filter(shop=shop, cancelled_at__isnull=True, created_at__lt=end)]
    net = lambda o: o.total - o.total_refunded  # noqa: E731
    on_day = [o for o in live if o.created_at >= start]
    out = {"members": sum(1 for h in members.values() if not h), "holdout_members": sum(members.values())}
    for prefix, holdout in (("", False), ("holdout_", True)):
        mine = [o for o in on_day if o.customer_id in members and members[o.customer_id] == holdout]
        out[prefix + "orders"] = len(mine)
        out[prefix + "buyers"] = len({o.customer_id for o in mine})
        out[prefix + "revenue"] = sum((net(o) for o in mine), Decimal("0.00"))
    buyers = {o.customer_id for o in on_day if members.get(o.customer_id) is False}
    out["repeat_buyers"] = sum(1 for c in buyers if any(o.customer_id == c and o.created_at < start for o in live))
    out["store_revenue"] = sum((net(o) for o in on_day), Decimal("0.00"))
    treated = {c for c, h in members.items() if not h}
    out["clv_total"] = sum((net(o) for o in live if o.customer_id in treated), Decimal("0.00"))
    events = MembershipEvent.objects.filter(segment=segment, at__gte=start, at__lt=end, holdout=False)
    out["entries"] = events.filter(entered=True).count()
    out["exits"] = events.filter(entered=False).count()
    # Gross profit from the line items and the costs as they are, lines without one at the default margin.
    costs = dict(VariantCost.objects.filter(shop=shop).values_list("variant_id", "unit_cost"))
    fill = Decimal(100 - shop.default_margin_percent) / 100
    for prefix, holdout in (("", False), ("holdout_", True)):
        mine = [o for o in on_day if o.customer_id in members and members[o.customer_id] == holdout]
        lines = [line for o in mine for line in o.line_items.all()]
        cost = sum((line.quantity * costs[line.variant_id] if costs.get(line.variant_id) is not None
                    else line.quantity * line.price * fill for line in lines), Decimal(0))
        revenue = sum((line.quantity * line.price for line in lines), Decimal(0))
        refunds = sum((o.total_refunded for o in mine), Decimal(0))
        out[prefix + "gross_profit"] = (revenue - cost - refunds).quantize(Decimal("0.01"))
    treated_lines = [line for o in on_day if members.get(o.customer_id) is False for line in o.line_items.all()]
    out["uncosted_lines"] = sum(1 for line in treated_lines if costs.get(line.variant_id) is None)
    return out


def test_snapshot_of_a_day_matches_the_event_log_and_the_orders(shop, store):
    now = timezone.now()
    today = shop_today(shop, now)
    day = today - dt.timedelta(days=1)
    before = today - dt.timedelta(days=5)
    store.customers(range(1, 21), created=store.local(before - dt.timedelta(days=60)))
    VariantCost.objects.create(shop=shop, inventory_item_id=1, variant_id=COSTED, unit_cost=Decimal("12.50"))
    shop.default_margin_percent = 40          # fills the lines of UNCOSTED (no unit cost)
    shop.save()
    # History: most customers bought weeks ago; some again on `day`; a refund, a cancellation, a guest.
    for sid in range(1, 16):
        store.order(sid, store.local(before - dt.timedelta(days=sid)), f"{20 + 7 * sid}.00")
    store.order(3, store.local(day, 9), "80.00", lines=[(COSTED, 2, "40.00")])
    store.order(3, store.local(day, 23, 30), "20.00", refunded="5.00", lines=[(UNCOSTED, 1, "20.00")])
    store.order(7, store.local(day, 0, 10), "300.00", lines=[(COSTED, 1, "100.00"), (UNCOSTED, 4, "50.00")])
    store.order(16, store.local(day, 15), "45.00", lines=[(UNCOSTED, 3, "15.00")])   # a first order on the day
    store.order(9, store.local(day, 11), "60.00", cancelled=True)
    store.order(None, store.local(day, 10), "33.00")            # a guest: store revenue only
    store.order(4, store.local(day - dt.timedelta(days=1), 23, 50), "99.00")   # the evening before
    store.order(5, store.local(today, 0, 5), "70.00")           # after the day ended
    buyers = make_segment(shop, "Buyers", BUYERS, holdout_percent=30)
    Segment.objects.filter(pk=buyers.pk).update(holdout_salt="snapshot-day")   # holds out 1, 2, 7, 11 and 14
    big = make_segment(shop, "Big", BIG)
    customer_metrics_rebuild(shop=shop, now=now)
    segments_recompute(shop=shop, now=store.local(before))
    # Later in the day an edit makes Big stricter; exits are recorded then, entries for 16 too.
    segment_update(segment=big, rules=BIGGER)
    big.refresh_from_db()
    segments_recompute(shop=shop, now=store.local(day, 16))
    # After the day: another edit and its exits, which the snapshot of `day` must undo.
    segment_update(segment=big, rules={"version": 1, "include": {"metric": "total_spent", "op": "gte", "value": 350}})
    segments_recompute(shop=shop, now=now)

    assert kpi_snapshot_day(shop=shop, day=day) == 2
    for segment in (buyers, big):
        snap = SegmentKpiSnapshot.objects.get(segment=segment, day=day)
        want = expected(segment, shop, day)
        got = {key: getattr(snap, key) for key in want}
        assert got == want, segment.name
        assert snap.shop_id == shop.pk and not snap.backfilled
    big_snap = SegmentKpiSnapshot.objects.get(segment=big, day=day)
    assert big_snap.exits > 0 and big_snap.members > 0
    buyers_snap = SegmentKpiSnapshot.objects.get(segment=buyers, day=day)
    assert buyers_snap.holdout_members > 0 and buyers_snap.entries == 0
    # Predicted CLV is at least the observed spend; a second run replaces the row, not adds one.
    assert buyers_snap.predicted_clv_total >= buyers_snap.clv_total
    assert kpi_snapshot_day(shop=shop, day=day) == 2
    assert SegmentKpiSnapshot.objects.filter(day=day).count() == 2
    assert buyers_snap.gross_profit is not None and buyers_snap.uncosted_lines > 0


def test_a_days_profit_is_not_measured_when_a_line_has_no_cost_and_no_default_margin(shop, store):
    today = shop_today(shop)
    day = today - dt.timedelta(days=1)
    store.customers([1, 2], created=store.local(day - dt.timedelta(days=30)))
    VariantCost.objects.create(shop=shop, inventory_item_id=1, variant_id=COSTED, unit_cost=Decimal("12.50"))
    store.order(1, store.local(day, 9), "80.00", lines=[(COSTED, 2, "40.00")])
    costed = make_segment(shop, "Costed", {"version": 1, "include": {"metric": "gross_profit", "op": "gte",
                                                                     "value": 0}})
    everyone = make_segment(shop, "Buyers", BUYERS)
    store.order(2, store.local(day, 10), "20.00", lines=[(UNCOSTED, 1, "20.00")])
    customer_metrics_rebuild(shop=shop, now=store.local(day, 12))
    segments_recompute(shop=shop, now=store.local(day, 12))
    kpi_snapshot_day(shop=shop, day=day)
    mine = SegmentKpiSnapshot.objects.get(segment=costed, day=day)
    assert (mine.members, mine.gross_profit, mine.uncosted_lines) == (1, Decimal("55.00"), 0)   # 80 - 2 x 12.50
    theirs = SegmentKpiSnapshot.objects.get(segment=everyone, day=day)
    assert (theirs.members, theirs.gross_profit, theirs.uncosted_lines) == (2, None, 1)


def test_snapshot_of_a_segment_nobody_is_in_is_zero_with_no_predicted_clv(shop, store):
    nobody = make_segment(shop, "Nobody", {"version": 1, "include": {"metric": "orders_count", "op": "gte",
                                                                    "value": 1000}})
    segments_recompute(shop=shop)
    day = shop_today(shop) - dt.timedelta(days=1)
    kpi_snapshot_day(shop=shop, day=day)
    snap = SegmentKpiSnapshot.objects.get(segment=nobody, day=day)
    assert (snap.members, snap.orders, snap.revenue, snap.predicted_clv_total) == (0, 0, Decimal("0"), None)


def test_snapshot_ignores_other_shops_segments(shop, other_shop, store):
    mine = make_segment(shop, "Buyers", BUYERS)
    theirs = make_segment(other_shop, "Buyers", BUYERS)
    day = shop_today(shop) - dt.timedelta(days=1)
    assert kpi_snapshot_day(shop=shop, day=day, segments=[mine, theirs]) == 1
    assert not SegmentKpiSnapshot.objects.filter(segment=theirs).exists()


def test_backfill_estimates_past_days_from_todays_members_and_keeps_observed_days(shop, store):
    now = timezone.now()
    today = shop_today(shop, now)
    store.customers(range(1, 7), created=store.local(today - dt.timedelta(days=200)))
    store.order(1, store.local(today - dt.timedelta(days=150)), "40.00")        # before the window
    store.order(1, store.local(today - dt.timedelta(days=10)), "60.00", lines=[(UNCOSTED, 2, "30.00")])
    store.order(2, store.local(today - dt.timedelta(days=10), 22), "25.00", refunded="5.00")
    store.order(2, store.local(today - dt.timedelta(days=3)), "30.00")
    store.order(3, store.local(today - dt.timedelta(days=200)), "500.00")       # before the window
    store.order(None, store.local(today - dt.timedelta(days=3)), "11.00")       # a guest
    segment = make_segment(shop, "Buyers", BUYERS)
    customer_metrics_rebuild(shop=shop, now=now)
    segments_recompute(shop=shop, now=now)
    observed_day = today - dt.timedelta(days=1)
    kpi_snapshot_day(shop=shop, day=observed_day)
    observed = SegmentKpiSnapshot.objects.get(segment=segment, day=observed_day)

    assert kpi_snapshots_backfill(segment=segment, days=30, now=now) == 30
    rows = {s.day: s for s in SegmentKpiSnapshot.objects.filter(segment=segment)}
    assert len(rows) == 30 and rows[observed_day].computed_at == observed.computed_at   # kept
    assert not rows[observed_day].backfilled
    ten = rows[today - dt.timedelta(days=10)]
    assert ten.backfilled and (ten.members, ten.entries, ten.exits) == (3, 0, 0)
    assert (ten.orders, ten.buyers, ten.repeat_buyers, ten.revenue) == (2, 2, 1, Decimal("80.00"))
    assert ten.clv_total == Decimal("620.00")            # 40 + 500 before, 60 + 20 that day
    assert ten.predicted_clv_total is None
    assert (ten.gross_profit, ten.uncosted_lines) == (None, 1)   # no cost and no default margin: not measured
    assert rows[today - dt.timedelta(days=3)].gross_profit == Decimal("0.00")    # no lines, nothing refunded
    three = rows[today - dt.timedelta(days=3)]
    assert (three.buyers, three.repeat_buyers, three.revenue, three.store_revenue) == (1, 1, Decimal("30.00"),
                                                                                          Decimal("41.00"))
    assert three.clv_total == Decimal("650.00")
    assert rows[today - dt.timedelta(days=20)].clv_total == Decimal("540.00")
    with pytest.raises(ValueError):
        kpi_snapshots_backfill(segment=segment, days=0)
