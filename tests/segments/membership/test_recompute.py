"""Membership: full and incremental evaluation, history with triggers, tag changes, holdouts,
exclusive groups with hysteresis, versions superseding each other, the time sweep, dry-run, why."""
from __future__ import annotations

import datetime as dt

import pytest

from segments.membership import recompute as membership_service
from segments.membership.clock import segments_time_sweep
from segments.membership.definitions import membership_why, segment_dry_run
from segments.membership.models import (
    ExclusiveGroup, Membership, MembershipEvent, Segment, SegmentVersion, TagChange, Trigger,
)
from segments.membership.recompute import Superseded, holdout_bucket, segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild, dirty_customers_refresh
from segments.mirror.models import Customer
from segments.shops.models import Shop
from tests.segments.engine.test_metrics_table import NOW, Mirror, days

pytestmark = pytest.mark.django_db

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
REPEAT = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 2}}
RECENT = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1, "window": {"last_days": 30}}}


def make_segment(shop: Shop, handle: str, rules: dict, **fields) -> Segment:
    """A segment row and its first version, without the on-commit recompute (tests drive it)."""
    segment = Segment.objects.create(shop=shop, name=handle.title(), handle=handle, **fields)
    SegmentVersion.objects.create(segment=segment, number=1, rules=rules)
    return segment


def member_sids(segment: Segment, holdout: bool | None = None) -> set[int]:
    rows = Membership.objects.filter(segment=segment)
    if holdout is not None:
        rows = rows.filter(holdout=holdout)
    return set(Customer.objects.filter(pk__in=rows.values("customer_id")).values_list("shopify_id", flat=True))


@pytest.fixture
def shop():
    return Shop.objects.create(domain="membership.myshopify.com", iana_timezone="UTC", checkout_abandon_minutes=60)


@pytest.fixture
def store(shop) -> Mirror:
    m = Mirror(shop)
    for sid in range(1, 7):
        m.customer(sid)
    m.order(1, 10)            # 1: one recent order
    m.order(2, 100)           # 2: two old orders
    m.order(2, 90)
    m.order(3, 5)             # 3: two orders, one recent
    m.order(3, 200)
    # 4, 5, 6: nothing
    customer_metrics_rebuild(shop=shop, now=NOW)
    return m


def test_full_recompute_writes_members_history_and_tag_changes(shop, store):
    buyers = make_segment(shop, "buyers", BUYERS)
    repeat = make_segment(shop, "repeat", REPEAT)
    outcome = segments_recompute(shop=shop, trigger=Trigger.NIGHTLY, now=NOW)
    assert member_sids(buyers) == {1, 2, 3}
    assert member_sids(repeat) == {2, 3}
    assert outcome.entered == 5 and outcome.exited == 0
    events = MembershipEvent.objects.filter(segment=buyers)
    assert events.count() == 3 and all(e.entered and e.trigger == Trigger.NIGHTLY and e.version == 1 for e in events)
    assert set(TagChange.objects.filter(shop=shop, add=True).values_list("tag", flat=True)) == {"seg:buyers",
                                                                                               "seg:repeat"}
    buyers.refresh_from_db()
    assert (buyers.member_count, buyers.computed_version, buyers.computing) == (3, 1, False)
    # Nothing changed: a second run writes nothing at all.
    before = (MembershipEvent.objects.count(), TagChange.objects.count())
    assert segments_recompute(shop=shop, now=NOW).entered == 0
    assert (MembershipEvent.objects.count(), TagChange.objects.count()) == before


def test_a_full_recompute_aggregates_sorted_and_leaves_the_callers_planner_settings_as_they_were(shop, store):
    from django.db import connection, transaction

    from segments.engine.planner import RECOMPUTE_SETTINGS

    make_segment(shop, "repeat", {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 2,
                                                             "window": {"last_days": 400}}})
    seen = []
    settings = "SELECT current_setting('enable_hashagg'), current_setting('work_mem')"

    def spy(execute, sql, params, many, context):
        if sql.startswith(f"INSERT INTO {membership_service.DESIRED} (segment_id, customer_id) WITH"):
            with connection.cursor() as cursor:     # the deciding statement runs under the settings
                cursor.execute(settings)
                seen.append(cursor.fetchone())
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(settings)
        before = cursor.fetchone()
        with connection.execute_wrapper(spy):
            segments_recompute(shop=shop, now=NOW)
        cursor.execute(settings)
        after = cursor.fetchone()
    assert seen == [("off", RECOMPUTE_SETTINGS["work_mem"])] != [before]
    assert after == before


def test_incremental_run_touches_only_the_given_customers_and_records_their_cause(shop, store):
    repeat = make_segment(shop, "repeat", REPEAT)
    segments_recompute(shop=shop, now=NOW)
    store.order(1, 1)                       # customer 1's second order arrives
    store.order(4, 1)                       # so does 4's first, but 4 is not recomputed here
    one = Customer.objects.get(shop=shop, shopify_id=1)
    Customer.objects.filter(pk=one.pk).update(dirty_cause="orders/create")
    Customer.objects.exclude(pk=one.pk).update(dirty_at=None)
    assert dirty_customers_refresh(shop=shop, now=NOW) == [one.pk]
    assert member_sids(repeat) == {1, 2, 3}
    entry = MembershipEvent.objects.get(segment=repeat, customer=one)
    assert (entry.entered, entry.trigger, entry.cause) == (True, Trigger.EVENT, "orders/create")
    repeat.refresh_from_db()
    assert repeat.member_count == 3
    assert Customer.objects.get(pk=one.pk).dirty_at is None


def test_a_deleted_customer_leaves_with_trigger_removed(shop, store):
    from segments.mirror.writer import customer_delete

    buyers = make_segment(shop, "buyers", BUYERS)
    segments_recompute(shop=shop, now=NOW)
    customer_delete(shop=shop, shopify_id=1)
    dirty_customers_refresh(shop=shop, now=NOW)
    assert member_sids(buyers) == {2, 3}
    exit_ = MembershipEvent.objects.get(segment=buyers, entered=False)
    assert exit_.trigger == Trigger.REMOVED
    assert TagChange.objects.filter(tag="seg:buyers", add=False).count() == 1


def test_holdout_is_a_deterministic_salted_share_that_gets_no_tag(shop):
    m = Mirror(shop)
    for sid in range(1, 401):
        m.customer(sid)
        m.order(sid, 3)
    customer_metrics_rebuild(shop=shop, now=NOW)
    segment = make_segment(shop, "buyers", BUYERS, holdout_percent=20, holdout_salt="fixed-salt")
    segments_recompute(shop=shop, now=NOW)
    held = member_sids(segment, holdout=True)
    assert held == {sid for sid in range(1, 401) if holdout_bucket("fixed-salt", sid) < 2000}
    assert 50 <= len(held) <= 110                       # about 20% of 400
    assert not TagChange.objects.filter(customer__shopify_id__in=held).exists()
    assert TagChange.objects.filter(tag="seg:buyers").count() == 400 - len(held)
    # The same customers stay in control across a full rebuild from scratch.
    Membership.objects.all().delete()
    segments_recompute(shop=shop, now=NOW)
    assert member_sids(segment, holdout=True) == held


def test_exclusive_group_keeps_the_highest_tier_and_hysteresis_holds_a_fresh_tier(shop, store):
    ladder = ExclusiveGroup.objects.create(shop=shop, name="tiers", hysteresis_days=7)
    gold = make_segment(shop, "gold", REPEAT, group=ladder, priority=2)
    silver = make_segment(shop, "silver", BUYERS, group=ladder, priority=1)
    segments_recompute(shop=shop, now=NOW)
    assert member_sids(gold) == {2, 3} and member_sids(silver) == {1}
    # Customer 3's second order is cancelled: now they qualify for silver only.
    Customer.objects.filter(shop=shop, shopify_id=3)
    from segments.mirror.models import Order

    three = Customer.objects.get(shop=shop, shopify_id=3)
    Order.objects.filter(customer=three).order_by("created_at").filter(pk=Order.objects.filter(customer=three)
                                                                      .order_by("created_at").first().pk) \
        .update(cancelled_at=NOW)
    customer_metrics_rebuild(shop=shop, now=NOW + dt.timedelta(days=1))
    segments_recompute(shop=shop, now=NOW + dt.timedelta(days=1))
    assert 3 in member_sids(gold), "entered gold a day ago: held for 7 days"
    segments_recompute(shop=shop, now=NOW + dt.timedelta(days=8))
    assert 3 not in member_sids(gold) and 3 in member_sids(silver)
    for sid in (1, 2, 3):
        assert sum(sid in member_sids(s) for s in (gold, silver)) == 1


def test_a_superseded_version_writes_nothing(shop, store):
    segment = make_segment(shop, "buyers", BUYERS)
    with pytest.raises(Superseded):
        segments_recompute(shop=shop, segments=[segment], expect_versions={segment.pk: 0}, now=NOW)
    assert not Membership.objects.exists() and not MembershipEvent.objects.exists()


def test_time_sweep_marks_customers_when_a_window_passes_and_they_exit(shop, store):
    recent = make_segment(shop, "recent", RECENT)
    segments_recompute(shop=shop, now=NOW)
    Customer.objects.update(dirty_at=None, dirty_cause="")
    assert member_sids(recent) == {1, 3}             # orders 10 and 5 days ago
    assert segments_time_sweep(shop=shop, now=NOW)["customers"] == 0      # first sweep: starts the clock
    # Customer 1's order (10 days before NOW, at noon) leaves the 30-day window at midnight
    # 21 days after NOW's day; nothing happens a minute before.
    placed = days(10).date()
    leaves = dt.datetime.combine(placed + dt.timedelta(days=31), dt.time(0), tzinfo=dt.UTC)
    assert segments_time_sweep(shop=shop, now=leaves - dt.timedelta(minutes=1))["customers"] == 0
    assert segments_time_sweep(shop=shop, now=leaves + dt.timedelta(minutes=1))["customers"] == 1
    one = Customer.objects.get(shop=shop, shopify_id=1)
    assert one.dirty_cause == "time"
    dirty_customers_refresh(shop=shop, now=leaves + dt.timedelta(minutes=1))
    assert member_sids(recent) == {3}
    exit_ = MembershipEvent.objects.get(segment=recent, entered=False)
    assert (exit_.customer_id, exit_.trigger, exit_.cause) == (one.pk, Trigger.TIME, "time")


def test_dry_run_reports_size_entries_and_exits_without_writing(shop, store):
    segment = make_segment(shop, "buyers", BUYERS)
    segments_recompute(shop=shop, now=NOW)
    before = (Membership.objects.count(), MembershipEvent.objects.count(), TagChange.objects.count())
    preview = segment_dry_run(shop=shop, rules=REPEAT, segment=segment, now=NOW)
    assert (preview["size"], preview["entries"], preview["exits"]) == (2, 0, 1)
    assert [c["shopify_id"] for c in preview["sample"]["exits"]] == [1]
    assert (Membership.objects.count(), MembershipEvent.objects.count(), TagChange.objects.count()) == before


def test_why_shows_each_conditions_value_and_verdict(shop, store):
    rules = {"version": 1, "include": {"all": [
        {"metric": "orders_count", "op": "gte", "value": 2},
        {"metric": "days_since_last_order", "op": "lte", "value": 30}]}}
    segment = make_segment(shop, "active-repeat", rules)
    segments_recompute(shop=shop, now=NOW)
    three = Customer.objects.get(shop=shop, shopify_id=3)
    why = membership_why(segment=segment, customer=three, now=NOW)
    assert why["member"] and why["qualifies"]
    assert [(c["metric"], c["value"], c["passed"]) for c in why["conditions"]] == [
        ("orders_count", 2, True), ("days_since_last_order", 5, True)]
    two = Customer.objects.get(shop=shop, shopify_id=2)
    why = membership_why(segment=segment, customer=two, now=NOW)
    assert not why["member"] and [c["passed"] for c in why["conditions"]] == [True, False]


def test_holdout_bucket_is_the_same_in_sql_and_python(shop, store):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {membership_service.holdout_sql('%s', '%s')}", ["salt", 1234567890123])
        assert cursor.fetchone()[0] == holdout_bucket("salt", 1234567890123)


def test_edits_are_versions_and_a_newer_version_supersedes_an_older_recompute(
        shop, store, django_capture_on_commit_callbacks):
    from segments.membership.definitions import segment_create, segment_update
    from segments.membership.tasks import segment_recompute_task

    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(shop=shop, name="Buyers", rules=BUYERS, author="ann@shop", reason="first cut")
    segment.refresh_from_db()
    assert (segment.current_version, segment.computed_version, segment.member_count) == (1, 1, 3)
    with django_capture_on_commit_callbacks(execute=False):
        version = segment_update(segment=segment, rules=REPEAT, author="bob@shop", reason="repeat only")
    assert version.number == 2 and version.author == "bob@shop"
    assert "at least 2" in " ".join(change["text"] for change in version.diff)
    with django_capture_on_commit_callbacks(execute=False):
        segment_update(segment=segment, holdout_percent=10, reason="measure it")
    # The queued recompute of version 2 finds version 3 current: it stops without writing.
    assert segment_recompute_task(segment.pk, 2) == "superseded"
    assert member_sids(segment) == {1, 2, 3}
    assert segment_recompute_task(segment.pk, 3) == "done"
    segment.refresh_from_db()
    assert (segment.computed_version, segment.computing) == (3, False)
    assert member_sids(segment) == {2, 3}
    exit_ = MembershipEvent.objects.get(segment=segment, entered=False)
    assert (exit_.trigger, exit_.version, exit_.cause) == (Trigger.DEFINITION, 3, "version 3")
    assert segment_update(segment=segment, rules=REPEAT) is None      # nothing changed: no version


def test_bad_rules_or_settings_save_nothing(shop, store):
    from segments.engine.rules import RuleError, SettingsError
    from segments.membership.definitions import segment_create

    with pytest.raises(RuleError):
        segment_create(shop=shop, name="Bad", rules={"version": 1, "include": {"metric": "nope"}})
    with pytest.raises(SettingsError) as error:
        segment_create(shop=shop, name="Bad", rules=BUYERS, holdout_percent=80)
    assert error.value.problems[0].path == "holdout_percent"
    assert not Segment.objects.exists() and not SegmentVersion.objects.exists()


def test_a_full_rebuild_clears_the_marks_it_covered_but_not_younger_ones(shop, store):
    import datetime as dt

    from django.utils import timezone

    from segments.metrics.tasks import customer_metrics_rebuild_task

    make_segment(shop, "buyers", BUYERS)
    old = Customer.objects.get(shop=shop, shopify_id=1)
    young = Customer.objects.get(shop=shop, shopify_id=2)
    Customer.objects.filter(shop=shop).update(dirty_at=None)
    Customer.objects.filter(pk=old.pk).update(dirty_at=timezone.now() - dt.timedelta(hours=1), dirty_cause="backfill")
    Customer.objects.filter(pk=young.pk).update(dirty_at=timezone.now(), dirty_cause="orders/create")
    customer_metrics_rebuild_task(shop.pk, Trigger.EVENT, "backfill")
    assert Customer.objects.get(pk=old.pk).dirty_at is None
    assert Customer.objects.get(pk=young.pk).dirty_at is not None
    assert MembershipEvent.objects.filter(cause="backfill", trigger=Trigger.EVENT).count() == 3


def _sweep_marks(shop: Shop, start: dt.datetime, end: dt.datetime) -> set[int]:
    """Start the clock at `start`, sweep to `end`; the shopify ids marked with cause "time"."""
    from segments.membership.models import SegmentClock

    Customer.objects.filter(shop=shop).update(dirty_at=None, dirty_cause="")
    SegmentClock.objects.update_or_create(shop=shop, defaults={"swept_until": start})
    segments_time_sweep(shop=shop, now=end)
    return set(Customer.objects.filter(shop=shop, dirty_cause="time").values_list("shopify_id", flat=True))


def test_time_sweep_catches_a_replenishment_ratio_crossing_its_threshold(shop):
    m = Mirror(shop)
    m.customer(1)
    m.order(1, 30)
    m.order(1, 20)             # gap 10 days; the ratio reaches 1.5 fifteen days after the last order
    customer_metrics_rebuild(shop=shop, now=NOW)
    make_segment(shop, "due", {"version": 1, "include": {"metric": "replenishment_ratio", "op": "gte",
                                                         "value": "1.5"}})
    due = days(20) + dt.timedelta(days=15)
    assert _sweep_marks(shop, due - dt.timedelta(minutes=2), due - dt.timedelta(minutes=1)) == set()
    assert _sweep_marks(shop, due - dt.timedelta(minutes=1), due + dt.timedelta(seconds=30)) == {1}


def test_time_sweep_catches_a_checkout_turning_abandoned(shop):
    m = Mirror(shop)
    m.customer(1)
    m.checkout(1, 0.5)          # created 12 hours before NOW: abandoned 60 minutes later
    created = NOW - dt.timedelta(days=0.5)
    assert _sweep_marks(shop, created + dt.timedelta(minutes=30), created + dt.timedelta(minutes=59)) == set()
    assert _sweep_marks(shop, created + dt.timedelta(minutes=59), created + dt.timedelta(minutes=61)) == {1}


def test_time_sweep_catches_a_last_visit_growing_old(shop):
    from segments.storefront.models import Visitor, VisitorDay

    m = Mirror(shop)
    m.customer(1)
    m.customer(2)
    for sid, days_ago in ((1, 3), (2, 40)):    # each visited once, from 23:00 the day before to 01:00
        customer = Customer.objects.get(shop=shop, shopify_id=sid)
        visitor = Visitor.objects.create(shop=shop, client_id=f"c{sid}", customer=customer,
                                         first_seen_at=NOW, last_seen_at=NOW)
        last = dt.datetime.combine(days(days_ago).date(), dt.time(1), tzinfo=dt.UTC)
        VisitorDay.objects.create(shop=shop, visitor=visitor, day=last.date(), first_at=last - dt.timedelta(hours=2),
                                  last_at=last, sessions=1)
    make_segment(shop, "lapsed", {"version": 1, "include": {"metric": "days_since_last_visit", "op": "gt",
                                                            "value": 7}})
    # Customer 1's last event (3 days before NOW) is 8 days old from the midnight 5 days after NOW's
    # day; their visit's first event, on the day before, does not decide it.
    crosses = dt.datetime.combine(days(3).date() + dt.timedelta(days=8), dt.time(0), tzinfo=dt.UTC)
    assert _sweep_marks(shop, crosses - dt.timedelta(minutes=2), crosses - dt.timedelta(minutes=1)) == set()
    assert _sweep_marks(shop, crosses - dt.timedelta(minutes=1), crosses + dt.timedelta(minutes=1)) == {1}


def test_redacting_a_customer_or_the_shop_erases_memberships_history_and_tag_changes(shop, store):
    from segments.metrics.models import CustomerMetrics
    from segments.privacy.compliance import compliance_customer_redact, compliance_shop_redact
    from segments.shops.models import ShopStatus

    other = Shop.objects.create(domain="membership-other.myshopify.com")
    Mirror(other).customer(1)
    customer_metrics_rebuild(shop=other, now=NOW)
    kept = make_segment(other, "everyone", {"version": 1, "include": {"metric": "orders_count", "op": "gte",
                                                                      "value": 0}})
    segments_recompute(shop=other, now=NOW)
    make_segment(shop, "buyers", BUYERS)
    segments_recompute(shop=shop, now=NOW)
    one = Customer.objects.get(shop=shop, shopify_id=1)
    compliance_customer_redact(shop_domain=shop.domain, payload={"customer": {"id": 1}, "orders_to_redact": []})
    for model in (Membership, MembershipEvent, TagChange, CustomerMetrics):
        assert not model.objects.filter(customer_id=one.pk).exists(), model
    assert Membership.objects.filter(shop=shop).count() == 2
    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.UNINSTALLED)
    compliance_shop_redact(shop_domain=shop.domain, payload={})
    for model in (Membership, MembershipEvent, TagChange, CustomerMetrics, Segment, Customer):
        assert not model.objects.filter(shop_id=shop.pk).exists(), model
    assert member_sids(kept) == {1}                      # the other shop is untouched


def test_the_minute_task_requeues_a_recompute_that_never_finished(shop, store, settings):
    from django.utils import timezone

    from segments.membership.tasks import segments_minute_task
    from segments.shops.models import ShopStatus

    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.INSTALLED)
    segment = make_segment(shop, "buyers", BUYERS, compute_requested_at=timezone.now() - dt.timedelta(minutes=6))
    assert segment.computing                                   # version 1 asked for, never computed
    result = segments_minute_task()                            # tasks run in-process in tests
    segment.refresh_from_db()
    assert result["requeued"] == 1
    assert (segment.computed_version, segment.computing, member_sids(segment)) == (1, False, {1, 2, 3})
    assert segments_minute_task()["requeued"] == 0
