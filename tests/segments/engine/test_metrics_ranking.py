"""Ranks between rebuilds: the dirty refresh re-ranks the shop's buyers when the breakpoints they
were ranked against no longer describe the shop, and moves the rank segments of the customers
whose ranks changed; a large shop waits for its drift threshold."""
from __future__ import annotations

import datetime as dt

import pytest

from segments.engine import metrics_ranking
from segments.membership.models import MembershipEvent
from segments.metrics.models import CustomerMetrics, ShopMetricsBreakpoints
from segments.metrics.refresh import RANKS_CAUSE, customer_metrics_rebuild, dirty_customers_refresh
from segments.shops.models import Shop
from tests.segments.engine.test_metrics_table import NOW, Mirror, assert_rows_equal, reference, stored, varied_mirror
from tests.segments.membership.test_recompute import make_segment, member_sids

pytestmark = pytest.mark.django_db

VIP = {"version": 1, "include": {"metric": "spend_percentile", "op": "gte", "value": 0.9}}
LOST = {"version": 1, "include": {"metric": "rfm_group", "op": "eq", "value": "lost"}}
BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
LATER = NOW + dt.timedelta(hours=1)
RANKED = ("spend_percentile", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group")


@pytest.fixture
def shop():
    return Shop.objects.create(domain="ranking.myshopify.com", iana_timezone="UTC", checkout_abandon_minutes=60)


def ranks(shop: Shop) -> dict[int, tuple]:
    """shopify id -> (spend percentile, R, F, M, RFM group)."""
    return {row["customer__shopify_id"]: (float(row["spend_percentile"]), row["rfm_recency"], row["rfm_frequency"],
                                          row["rfm_monetary"], row["rfm_group"])
            for row in CustomerMetrics.objects.filter(shop=shop, orders_count__gt=0).values(
                "customer__shopify_id", "spend_percentile", "rfm_recency", "rfm_frequency", "rfm_monetary",
                "rfm_group")}


def test_buyers_arriving_after_a_rebuild_of_an_empty_shop_are_ranked_among_each_other(shop):
    m = Mirror(shop)
    for sid in (1, 2, 3, 4):
        m.customer(sid)
    customer_metrics_rebuild(shop=shop, now=NOW)       # the install's rebuild: no buyers yet
    vip, lost = make_segment(shop, "vip", VIP), make_segment(shop, "lost", LOST)
    for sid, (total, days_ago) in zip((1, 2, 3, 4), (("5.00", 400), ("50.00", 200), ("500.00", 60), ("5000.00", 2))):
        m.order(sid, days_ago, total)

    dirty_customers_refresh(shop=shop, now=LATER)

    assert ranks(shop) == {1: (0.25, 1, 1, 1, "lost"), 2: (0.5, 2, 1, 2, "hibernating"),
                           3: (0.75, 3, 1, 3, "needs_attention"), 4: (1.0, 4, 1, 4, "promising")}
    assert_rows_equal(stored(shop), reference(shop, now=LATER))
    assert member_sids(vip) == {4}
    assert member_sids(lost) == {1}


def test_a_buyer_who_moves_the_distribution_moves_other_customers_rank_segments(shop):
    m = varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    vip, buyers = make_segment(shop, "vip", VIP), make_segment(shop, "buyers", BUYERS)
    dirty_customers_refresh(shop=shop, now=NOW)        # the varied mirror's own marks
    before = member_sids(vip)
    MembershipEvent.objects.all().delete()
    # Two new big spenders push everyone else down the spend ranking.
    for sid in (20, 21):
        m.customer(sid)
        m.order(sid, 1, "5000.00")

    dirty_customers_refresh(shop=shop, now=LATER)

    # Every buyer ranked as a full rebuild ranks them.
    assert_rows_equal(stored(shop), reference(shop, now=LATER), RANKED)
    expected = {sid for sid, row in ranks(shop).items() if row[0] >= 0.9}
    assert member_sids(vip) == expected and expected != before | {20, 21}
    pushed_out = before - expected
    assert pushed_out
    exits = MembershipEvent.objects.filter(segment=vip, entered=False)
    assert {e.cause for e in exits} == {RANKS_CAUSE}
    assert set(exits.values_list("customer__shopify_id", flat=True)) == pushed_out
    # A segment that reads no rank was decided for the two new customers only.
    assert set(MembershipEvent.objects.filter(segment=buyers).values_list("customer__shopify_id", flat=True)) == {
        20, 21}


def test_a_large_shop_waits_for_its_drift_threshold_before_reranking(shop, monkeypatch):
    m = varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    dirty_customers_refresh(shop=shop, now=NOW)
    ranked_at = ShopMetricsBreakpoints.objects.get(shop=shop, position=50).computed_at
    monkeypatch.setattr(metrics_ranking, "EXACT_BELOW", 0)
    monkeypatch.setattr(metrics_ranking, "RANK_DRIFT", 0.25)   # of the shop's 10 buyers: 3 changes
    stale = ranks(shop)

    m.customer(20)
    m.order(20, 1, "5000.00")
    m.order(1, 1, "10.00")
    dirty_customers_refresh(shop=shop, now=LATER)

    assert ShopMetricsBreakpoints.objects.get(shop=shop, position=50).computed_at == ranked_at
    assert {sid: row for sid, row in ranks(shop).items() if sid not in (1, 20)} == {
        sid: row for sid, row in stale.items() if sid != 1}

    m.order(2, 1, "10.00")       # the third change since the ranking
    later = LATER + dt.timedelta(minutes=1)
    dirty_customers_refresh(shop=shop, now=later)

    assert ShopMetricsBreakpoints.objects.get(shop=shop, position=50).computed_at == later
    assert_rows_equal(stored(shop), reference(shop, now=later), RANKED)
