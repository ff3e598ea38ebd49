"""Holdout lift: a planted effect placed as orders in devstore and reconciled into the mirror is
found with its size; A/A comparisons on the mirror are flagged about as often as alpha says; the
numbers equal an independent computation; bad periods are refused."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.utils import timezone
from scipy import stats as sp

from devstore import mutations
from segments.experiences.models import Offer
from segments.measurement.lift import LiftError, segment_lift
from segments.membership.models import Membership, Segment
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import BackfillStatus, Order
from segments.mirror.reconcile import shop_reconcile
from segments.shops.calendar import shop_day_bounds, shop_today
from segments.shops.models import Shop
from tests.conftest import run_install
from tests.segments.measurement.conftest import make_segment
from tests.segments.mirror.test_backfill import run_backfill

pytestmark = pytest.mark.django_db

EVERYONE = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 0}}


def test_a_planted_conversion_lift_placed_in_devstore_is_detected_with_its_size(
        client, devstore, settings, django_capture_on_commit_callbacks):
    # Given a shop whose history ended ten days ago, installed and backfilled over HTTP,
    domain = devstore.create_shop()
    seeded_until = (timezone.now() - dt.timedelta(days=10)).isoformat()
    devstore.control("POST", f"/shops/{domain}/seed", json={"customers": 600, "seed": 5, "now": seeded_until})
    with django_capture_on_commit_callbacks(execute=True):
        assert run_install(client, devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
    shop = Shop.objects.get(domain=domain)
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    # and a segment of everyone with a 50% holdout, whose members entered before the period,
    segment = make_segment(shop, "Everyone", EVERYONE, holdout_percent=50)
    # One split every run: a random salt made a fresh sample each time, whose 95% interval missed the
    # planted effect one run in twenty.
    Segment.objects.filter(pk=segment.pk).update(holdout_salt="planted-lift")
    today = shop_today(shop)
    start = today - dt.timedelta(days=1)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=shop_day_bounds(shop, start)[0] - dt.timedelta(hours=1))
    members = dict(Membership.objects.filter(segment=segment).order_by("customer__shopify_id")
                   .values_list("customer__shopify_id", "holdout"))   # one order: the seeded draws repeat
    assert len(members) > 500

    # when treated members buy with probability 0.40 and held-out ones with 0.15, in devstore,
    planted, base = 0.25, 0.15
    rng = random.Random(2024)
    variant = devstore.store.conn().execute("SELECT id FROM variants WHERE shop = ? LIMIT 1", (domain,)).fetchone()[0]
    bought = {False: 0, True: 0}
    for sid, holdout in sorted(members.items()):
        if rng.random() < (base if holdout else base + planted):
            mutations.order_create(devstore.store, domain, line_items=[{"variant_id": variant, "quantity": 1}],
                                   customer_id=sid)
            bought[holdout] += 1
    # and the orders reach the mirror through reconciliation (Admin GraphQL over HTTP),
    assert shop_reconcile(shop_id=shop.pk) >= sum(bought.values())
    period_start = shop_day_bounds(shop, start)[0]
    assert Order.objects.filter(shop=shop, created_at__gte=period_start).count() == sum(bought.values())

    # then the lift service finds the planted difference, significant, its interval holding it.
    lift = segment_lift(segment=segment, start=start, end=today)
    n_t = sum(1 for h in members.values() if not h)
    n_c = len(members) - n_t
    assert (lift.treatment_members, lift.control_members) == (n_t, n_c)
    assert lift.conversion.diff == pytest.approx(bought[False] / n_t - bought[True] / n_c)
    assert lift.conversion.significant
    assert lift.conversion.ci_low <= planted <= lift.conversion.ci_high
    assert lift.revenue_per_member.diff > 0 and lift.revenue_per_member.significant
    assert not lift.srm.mismatch
    assert not any("Sample ratio" in w for w in lift.warnings)


def place_random_orders(shop, store, members: dict[int, bool], day: dt.date, rate: float, rng: random.Random):
    from segments.mirror.orders import orders_upsert
    from segments.mirror.records import OrderRecord

    records = []
    for sid in members:
        if rng.random() < rate:
            store.next_order += 1
            at = store.local(day, rng.randrange(0, 24), rng.randrange(0, 60))
            total = Decimal(rng.randrange(1000, 20000)) / 100
            records.append(OrderRecord(shopify_id=store.next_order, created_at=at, updated_at=at,
                                       customer_shopify_id=sid, total=total, subtotal=total))
    orders_upsert(shop=shop, records=records)


def test_aa_comparisons_are_flagged_at_about_the_error_rate(shop, store):
    """200 independent no-effect days (fresh random orders each, independent of the split): the
    number flagged at 5% stays within the binomial 99.9% band, for conversion and for revenue."""
    runs = 200
    today = shop_today(shop)
    first = today - dt.timedelta(days=runs)
    sids = range(1, 401)
    store.customers(sids, created=store.local(first - dt.timedelta(days=30)))
    segment = make_segment(shop, "Everyone", EVERYONE, holdout_percent=50)
    Segment.objects.filter(pk=segment.pk).update(holdout_salt="aa-split")   # a reproducible split
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=store.local(first - dt.timedelta(days=1)))
    members = dict(Membership.objects.filter(segment=segment).order_by("customer__shopify_id")
                   .values_list("customer__shopify_id", "holdout"))   # one order: the seeded draws repeat
    rng = random.Random(99)
    flagged = {"conversion": 0, "revenue": 0}
    for i in range(runs):
        day = first + dt.timedelta(days=i)
        place_random_orders(shop, store, members, day, 0.2, rng)
    for i in range(runs):
        day = first + dt.timedelta(days=i)
        lift = segment_lift(segment=segment, start=day, end=day)
        flagged["conversion"] += lift.conversion.significant
        flagged["revenue"] += lift.revenue_per_member.significant
    low, high = sp.binom.ppf(0.0005, runs, 0.05), sp.binom.ppf(0.9995, runs, 0.05)
    assert low <= flagged["conversion"] <= high, flagged
    assert low <= flagged["revenue"] <= high, flagged


def test_lift_numbers_equal_an_independent_count_and_cuped_narrows_the_interval(shop, store):
    today = shop_today(shop)
    start, end = today - dt.timedelta(days=14), today - dt.timedelta(days=1)
    sids = list(range(1, 301))
    store.customers(sids, created=store.local(start - dt.timedelta(days=60)))
    segment = make_segment(shop, "Everyone", EVERYONE, holdout_percent=20)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=store.local(start - dt.timedelta(days=20)))
    members = dict(Membership.objects.filter(segment=segment).order_by("customer__shopify_id")
                   .values_list("customer__shopify_id", "holdout"))   # one order: the seeded draws repeat
    rng = random.Random(3)
    spend = {}
    for sid in sids:    # a stable per-customer appetite: pre-period spend predicts period spend
        appetite = rng.choice([0, 0, 20, 60, 150])
        spend[sid] = appetite
        if appetite:
            store.order(sid, store.local(start - dt.timedelta(days=7)), f"{appetite + rng.randrange(0, 10)}.00")
            if rng.random() < 0.8:
                store.order(sid, store.local(start + dt.timedelta(days=3)), f"{appetite + rng.randrange(0, 10)}.00")
    plain = segment_lift(segment=segment, start=start, end=end)
    adjusted = segment_lift(segment=segment, start=start, end=end, cuped=True)
    period_start, period_end = shop_day_bounds(shop, start)[0], shop_day_bounds(shop, end)[1]
    revenue = {sid: 0.0 for sid in members}
    for sid, total in Order.objects.filter(shop=shop, created_at__gte=period_start, created_at__lt=period_end) \
            .values_list("customer__shopify_id", "total"):
        revenue[sid] += float(total)
    treated = [revenue[s] for s, h in members.items() if not h]
    held = [revenue[s] for s, h in members.items() if h]
    reference = sp.ttest_ind(treated, held, equal_var=False)
    assert plain.revenue_per_member.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert plain.conversion.treatment == pytest.approx(sum(1 for r in treated if r) / len(treated))
    assert adjusted.cuped_theta > 0.5
    width = lambda c: c.ci_high - c.ci_low  # noqa: E731
    assert width(adjusted.revenue_per_member) < 0.8 * width(plain.revenue_per_member)
    assert any("Too few members" in w for w in plain.warnings)      # 300 members cannot see 10%


def test_offer_redemptions_are_counted_per_member_treated_against_holdout(shop, store):
    today = shop_today(shop)
    start, end = today - dt.timedelta(days=14), today - dt.timedelta(days=1)
    sids = list(range(1, 201))
    store.customers(sids, created=store.local(start - dt.timedelta(days=60)))
    segment = make_segment(shop, "Everyone", EVERYONE, holdout_percent=50)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=store.local(start - dt.timedelta(days=20)))
    assert segment_lift(segment=segment, start=start, end=end).redemption is None     # no offers: nothing to count
    Offer.objects.create(shop=shop, segment=segment, key="members_percent", code="EVERYONE-MEMBERS", title="10% off",
                         state="ended")          # an ended offer's code still counts for its period
    members = dict(Membership.objects.filter(segment=segment).values_list("customer__shopify_id", "holdout"))
    treated = sorted(s for s, h in members.items() if not h)
    held = sorted(s for s, h in members.items() if h)
    for sid in treated[::4]:                     # a quarter redeem (codes are matched in any case), twice some
        store.order(sid, store.local(start + dt.timedelta(days=2)), codes=("everyone-members",))
        store.order(sid, store.local(start + dt.timedelta(days=3)), codes=("EVERYONE-MEMBERS", "WELCOME5"))
    for sid in treated[1::4]:                    # others buy without it, or used it before the period
        store.order(sid, store.local(start + dt.timedelta(days=2)), codes=("WELCOME5",))
        store.order(sid, store.local(start - dt.timedelta(days=2)), codes=("EVERYONE-MEMBERS",))
    store.order(held[0], store.local(start + dt.timedelta(days=2)), codes=("EVERYONE-MEMBERS",))   # leaked code
    lift = segment_lift(segment=segment, start=start, end=end)
    assert lift.offer_codes == ["EVERYONE-MEMBERS"]
    assert lift.redemption.treatment == pytest.approx(len(treated[::4]) / len(treated))
    assert lift.redemption.control == pytest.approx(1 / len(held))
    assert lift.redemption.significant and lift.to_dict()["offer_redemption"]["diff"] > 0.2


def test_bad_periods_are_refused(shop):
    segment = make_segment(shop, "Everyone", EVERYONE, holdout_percent=10)
    today = shop_today(shop)
    for start, end in ((today, today - dt.timedelta(days=1)), (today, today + dt.timedelta(days=1)),
                       (today - dt.timedelta(days=400), today)):
        with pytest.raises(LiftError):
            segment_lift(segment=segment, start=start, end=end)
    with pytest.raises(LiftError):
        segment_lift(segment=segment, start=today, end=today, target_lift=0)


def test_a_segment_without_holdout_says_there_is_nothing_to_compare(shop):
    segment = make_segment(shop, "Everyone", EVERYONE)
    today = shop_today(shop)
    lift = segment_lift(segment=segment, start=today, end=today)
    assert lift.conversion.p_value is None and "no holdout" in lift.warnings[0]
