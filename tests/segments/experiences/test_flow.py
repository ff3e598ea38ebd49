"""Shopify Flow triggers: recompute queues "Customer entered/left segment" for what customers' own
doings changed (never a merchant's edit, a backfill or the nightly run, never held-out members), and
the sender delivers them to devstore's flowTriggerReceive once, within the playbook's frequency cap,
retrying what fails and refusing nothing silently."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from segments.experiences.flow import HANDLES, flow_outbox_purge, shop_flow_send
from segments.experiences.models import Playbook
from segments.experiences.tasks import flow_triggers_sweep_task
from segments.membership.models import FlowTrigger, Segment, Trigger
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import dirty_customers_refresh
from segments.mirror.models import Customer
from segments.shops.models import ShopStatus
from tests.segments.engine.test_metrics_table import NOW
from tests.segments.membership.test_recompute import BUYERS, REPEAT, make_segment, shop, store  # noqa: F401

pytestmark = pytest.mark.django_db


def dirty(shop, *sids: int, cause: str = "orders/create") -> None:
    Customer.objects.filter(shop=shop).update(dirty_at=None)
    Customer.objects.filter(shop=shop, shopify_id__in=sids).update(dirty_at=NOW, dirty_cause=cause)


def queued(segment: Segment) -> list[tuple[int, bool]]:
    return sorted(FlowTrigger.objects.filter(segment=segment).values_list("customer__shopify_id", "entered"))


def test_a_customers_own_change_is_queued_a_merchants_edit_is_not(shop, store):
    repeat = make_segment(shop, "repeat", REPEAT)
    segments_recompute(shop=shop, trigger=Trigger.DEFINITION, now=NOW)       # the segment is created
    segments_recompute(shop=shop, trigger=Trigger.NIGHTLY, now=NOW)
    assert queued(repeat) == []
    store.order(1, 1)                                   # customer 1's second order: they enter
    dirty(shop, 1)
    dirty_customers_refresh(shop=shop, now=NOW)
    assert queued(repeat) == [(1, True)]


def test_held_out_members_are_never_queued(shop, store):
    buyers = make_segment(shop, "buyers", BUYERS, holdout_percent=50)
    segments_recompute(shop=shop, now=NOW)
    new = set(range(10, 30))
    for sid in sorted(new):
        store.customer(sid)
        store.order(sid, 1)
    dirty(shop, *new)
    dirty_customers_refresh(shop=shop, now=NOW)
    held = set(buyers.memberships.filter(holdout=True).values_list("customer__shopify_id", flat=True)) & new
    treated = set(buyers.memberships.filter(holdout=False).values_list("customer__shopify_id", flat=True)) & new
    assert held and treated and held | treated == new        # the 50% split put some on each side
    assert queued(buyers) == sorted((sid, True) for sid in treated)


@pytest.fixture
def flow_shop(installed_shop, devstore):
    """The installed shop with three of devstore's customers in the store copy and a segment."""
    devstore.control("POST", f"/shops/{installed_shop.domain}/seed", json={"customers": 3, "seed": 5})
    ids = [r[0] for r in devstore.store.conn().execute(
        "SELECT id FROM customers WHERE shop = ? ORDER BY id", (installed_shop.domain,))]
    customers = [Customer.objects.create(shop=installed_shop, shopify_id=sid) for sid in ids]
    segment = Segment.objects.create(shop=installed_shop, name="Big spenders", handle="big-spenders")
    return installed_shop, segment, customers


def queue(shop, segment, customer, entered: bool = True) -> FlowTrigger:
    return FlowTrigger.objects.create(shop=shop, segment=segment, customer=customer, entered=entered,
                                      created_at=timezone.now())


def received(devstore, shop) -> list[tuple[str, dict]]:
    rows = devstore.control("GET", f"/shops/{shop.domain}/flow-triggers")["flow_triggers"]
    return sorted((r["handle"], r["payload"]["customer_id"], r["payload"]["Segment tag"]) for r in rows)


def test_entries_and_exits_reach_flow_once_with_the_customer_and_segment(flow_shop, devstore):
    shop, segment, (a, b, _) = flow_shop
    queue(shop, segment, a)
    queue(shop, segment, b, entered=False)
    report = shop_flow_send(shop_id=shop.pk)
    assert report.results == {"sent": 2} and report.requests == 1          # one request, aliased
    assert received(devstore, shop) == sorted([(HANDLES[True], a.shopify_id, "seg:big-spenders"),
                                               (HANDLES[False], b.shopify_id, "seg:big-spenders")])
    rows = devstore.control("GET", f"/shops/{shop.domain}/flow-triggers")["flow_triggers"]
    assert {r["payload"]["Segment name"] for r in rows} == {"Big spenders"}
    assert set(FlowTrigger.objects.values_list("result", flat=True)) == {"sent"}
    assert flow_triggers_sweep_task() == 0 and len(received(devstore, shop)) == 2     # nothing sent twice


def test_the_playbooks_frequency_cap_holds_back_what_is_past_it(flow_shop, devstore):
    shop, segment, (a, b, _) = flow_shop
    Playbook.objects.create(shop=shop, segment=segment, frequency_cap=1)
    queue(shop, segment, a)
    queue(shop, segment, a, entered=False)
    queue(shop, segment, b)
    shop_flow_send(shop_id=shop.pk)
    assert sorted(FlowTrigger.objects.values_list("customer__shopify_id", "entered", "result")) == sorted([
        (a.shopify_id, True, "sent"), (a.shopify_id, False, "capped"), (b.shopify_id, True, "sent")])
    assert len(received(devstore, shop)) == 2


def test_a_failing_shopify_delays_a_trigger_and_loses_nothing(flow_shop, devstore, monkeypatch):
    shop, segment, (a, _, _) = flow_shop
    monkeypatch.setattr("segments.experiences.flow.MAX_TRANSIENT_WAIT", 0.0)   # the sender gives up at once
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "error5xx", "params": {"count": 50}})
    row = queue(shop, segment, a)
    report = shop_flow_send(shop_id=shop.pk)
    assert report.stopped.startswith("ShopifyTransientError") and received(devstore, shop) == []
    row.refresh_from_db()
    assert (row.processed_at, row.attempts, row.result) == (None, 1, "") and row.next_attempt_at > timezone.now()
    devstore.control("DELETE", "/faults", json={"shop": shop.domain, "kind": "error5xx"})
    assert shop_flow_send(shop_id=shop.pk).results == {}                    # not due yet
    FlowTrigger.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert shop_flow_send(shop_id=shop.pk).results == {"sent": 1}
    assert received(devstore, shop) == [(HANDLES[True], a.shopify_id, "seg:big-spenders")]


def test_a_trigger_flow_refuses_is_marked_with_why(flow_shop, devstore):
    shop, segment, _ = flow_shop
    stranger = Customer.objects.create(shop=shop, shopify_id=999_999_999)  # not in the shop on Shopify's side
    row = queue(shop, segment, stranger)
    assert shop_flow_send(shop_id=shop.pk).results == {"refused": 1}
    row.refresh_from_db()
    assert (row.result, row.last_error) == ("refused", "Customer not found.") and received(devstore, shop) == []


def test_an_uninstalled_shop_sends_nothing(flow_shop, devstore):
    shop, segment, (a, _, _) = flow_shop
    queue(shop, segment, a)
    type(shop).objects.filter(pk=shop.pk).update(status=ShopStatus.UNINSTALLED)
    assert shop_flow_send(shop_id=shop.pk).stopped == "unavailable"
    assert flow_triggers_sweep_task() == 0 and received(devstore, shop) == []
    assert FlowTrigger.objects.get().processed_at is None


def test_processed_triggers_are_purged_after_the_retention_but_never_inside_the_caps_week(flow_shop):
    shop, segment, (a, b, c) = flow_shop
    now = timezone.now()
    old, recent, pending = (queue(shop, segment, customer) for customer in (a, b, c))
    FlowTrigger.objects.filter(pk=old.pk).update(processed_at=now - dt.timedelta(days=8), result="sent")
    FlowTrigger.objects.filter(pk=recent.pk).update(processed_at=now - dt.timedelta(days=6), result="sent")
    assert flow_outbox_purge(older_than=dt.timedelta(days=1)) == 1         # 1 day asked, 7 kept for the cap
    assert set(FlowTrigger.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}
