"""Drift and feedback, end to end: the app runs under live_server, so devstore delivers the
`customer.tags_*` webhooks our writes and the merchant's hand edits cause, exactly as Shopify would."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from segments.membership.models import TagChange
from segments.mirror.models import Customer
from segments.mirror.records import CustomerRecord
from segments.mirror.writer import customers_upsert
from segments.shops.models import Shop
from segments.shops.throttle import ShopThrottle
from segments.tags.drift import CHECK_GRACE, shop_tags_check
from segments.tags.models import CustomerTag, LedgerState, TagAudit, TagResult, TagSource
from segments.tags.sync import shop_tags_sync
from tests.conftest import install_live, settle
from tests.segments.engine.test_metrics_table import Mirror
from tests.segments.tags.conftest import BUYERS, ONE_ORDER, TagStore
from webhooks import handlers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(devstore, live_server, settings):
    settings.REDIS_URL = ""                      # deliveries are drained in-process as they arrive
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 0
    domain, _ = install_live(devstore, live_server, settings)
    settle(devstore, domain)      # the install's backfill ends before the test writes history
    shop = Shop.objects.get(domain=domain)
    ShopThrottle(shop.pk).reset()
    live = TagStore(devstore=devstore, shop=shop, mirror=Mirror(shop))
    yield live
    devstore.control("POST", "/faults", json={"shop": domain, "kind": "drop_webhooks", "params": None})
    live.deliveries_settle()       # nothing of this shop reaches the app during the next test


def flush(live: TagStore) -> None:
    live.deliveries_settle()


def tagged_members(live: TagStore, count: int, policy: str = "repair") -> list[int]:
    Shop.objects.filter(pk=live.shop.pk).update(drift_policy=policy)
    live.shop.refresh_from_db()
    sids = live.customers(count, tags=["merchant"])
    for sid in sids:
        live.order(sid)
    live.segment("buyers", BUYERS)
    live.recompute()
    Customer.objects.filter(shop=live.shop).update(dirty_at=None, dirty_cause="")
    shop_tags_sync(shop_id=live.shop.pk)
    flush(live)
    # Shopify's occurredAt is compared with the time of our own write to tell a stale echo from a
    # later hand edit; devstore stamps whole seconds, so the merchant acts in a later second.
    time.sleep(1.1)
    return sids


def test_our_own_writes_echo_back_without_marking_anyone_dirty(live):
    # given members tagged by the app, whose echoes devstore delivered
    sids = tagged_members(live, 3)
    # then the echoes changed nothing we segment on, and queued nothing
    assert not Customer.objects.filter(shop=live.shop, dirty_at__isnull=False).exists()
    assert live.pending() == 0
    assert all(Customer.objects.get(shop=live.shop, shopify_id=sid).tags == ["merchant", "seg:buyers"]
               for sid in sids)
    assert not TagAudit.objects.filter(shop=live.shop, source=TagSource.DRIFT).exists()


def test_our_echo_with_a_custom_prefix_marks_nobody_dirty(live):
    Shop.objects.filter(pk=live.shop.pk).update(tag_prefix="aud:")
    (sid,) = tagged_members(live, 1)
    assert live.tags(sid) == ["merchant", "aud:buyers"]
    assert not Customer.objects.filter(shop=live.shop, dirty_at__isnull=False).exists()
    # while a merchant tag does (rules may read it)
    live.hand_edit(sid, add=["gold"])
    flush(live)
    assert Customer.objects.get(shop=live.shop, shopify_id=sid).dirty_at is not None


def test_a_tag_removed_by_hand_is_repaired(live):
    a, b = tagged_members(live, 2, policy="repair")
    # when a staff member removes our tag from one customer in the Shopify admin
    live.hand_edit(a, remove=["seg:buyers"])
    flush(live)
    # then the delivery queued a drift check, and the next sync writes the tag again
    assert TagChange.objects.filter(shop=live.shop, source=TagSource.DRIFT, processed_at__isnull=True).count() == 1
    report = shop_tags_sync(shop_id=live.shop.pk)
    assert report.calls == 1
    assert live.tags(a) == ["merchant", "seg:buyers"] and live.tags(b) == ["merchant", "seg:buyers"]
    repair = TagAudit.objects.get(shop=live.shop, source=TagSource.DRIFT)
    assert (repair.customer_shopify_id, repair.add, repair.result) == (a, True, TagResult.APPLIED)


def test_a_tag_removed_by_hand_is_reported_and_left_off(live):
    (a,) = tagged_members(live, 1, policy="report")
    live.hand_edit(a, remove=["seg:buyers"])
    flush(live)
    shop_tags_sync(shop_id=live.shop.pk)
    # then nothing was written back; the drift is in the audit and the ledger remembers it
    assert live.tags(a) == ["merchant"]
    report = TagAudit.objects.get(shop=live.shop, source=TagSource.DRIFT)
    assert (report.add, report.result) == (False, TagResult.REPORTED)
    assert CustomerTag.objects.get(shop=live.shop).state == LedgerState.SUPPRESSED
    # and later checks and syncs leave it as the merchant made it
    assert shop_tags_check(shop=live.shop, now=timezone.now() + CHECK_GRACE) == 0
    assert shop_tags_sync(shop_id=live.shop.pk).calls == 0
    assert live.tags(a) == ["merchant"]


def test_a_removal_only_reconciliation_saw_is_repaired_by_the_periodic_check(live):
    (a,) = tagged_members(live, 1, policy="repair")
    # given a hand removal whose webhook never arrived
    live.devstore.control("POST", "/faults", json={"shop": live.shop.domain, "kind": "drop_webhooks",
                                                   "params": {"rate": 1.0}})
    live.hand_edit(a, remove=["seg:buyers"])
    live.devstore.control("POST", "/faults", json={"shop": live.shop.domain, "kind": "drop_webhooks",
                                                   "params": None})
    # when reconciliation reads the customer (through the writer, as reconcile does)
    customers_upsert(shop=live.shop, records=[CustomerRecord(a, updated_at=timezone.now(), tags=["merchant"],
                                                             email=f"c{a}@example.com")])
    # then the periodic check queues the customer and the sync repairs the tag
    assert shop_tags_check(shop=live.shop, now=timezone.now() + CHECK_GRACE) == 1
    shop_tags_sync(shop_id=live.shop.pk)
    assert live.tags(a) == ["merchant", "seg:buyers"]


def test_look_alikes_added_by_hand_are_reported_and_never_removed(live):
    # given a member and a non-member
    Shop.objects.filter(pk=live.shop.pk).update(drift_policy="repair")
    a, outsider = live.customers(2)
    live.order(a)
    live.segment("one-timers", ONE_ORDER)
    live.recompute()
    shop_tags_sync(shop_id=live.shop.pk)
    flush(live)
    time.sleep(1.1)
    # when the merchant hand-adds our tag to the non-member, and an old look-alike we never wrote
    live.hand_edit(outsider, add=["seg:one-timers", "seg:vip-old"])
    flush(live)
    # then our tag on a non-member is reported (the look-alike we never wrote is just theirs)
    reported = TagAudit.objects.get(shop=live.shop, source=TagSource.DRIFT)
    assert (reported.customer_shopify_id, reported.tag, reported.add, reported.result) == (
        outsider, "seg:one-timers", True, TagResult.REPORTED)
    # and no sync or check ever removes them, not even after the customer enters and leaves
    assert shop_tags_check(shop=live.shop, now=timezone.now() + CHECK_GRACE) == 0
    live.order(outsider)
    live.recompute()
    shop_tags_sync(shop_id=live.shop.pk)
    live.order(outsider, days_ago=3)
    live.recompute()
    shop_tags_sync(shop_id=live.shop.pk)
    assert live.tags(outsider) == ["seg:one-timers", "seg:vip-old"]
    assert live.tags(a) == ["seg:one-timers"]


def test_a_late_echo_of_our_own_removal_does_not_undo_a_later_add(live):
    (a,) = tagged_members(live, 1)
    ours = TagAudit.objects.get(shop=live.shop)
    # a tags_removed event that happened before our add arrives late: it is not applied
    payload = {"customerId": f"gid://shopify/Customer/{a}", "tags": ["seg:buyers"],
               "occurredAt": (ours.at - dt.timedelta(seconds=30)).isoformat()}
    handlers.customer_tags_removed(live.shop.domain, payload)
    assert Customer.objects.get(shop=live.shop, shopify_id=a).tags == ["merchant", "seg:buyers"]
    assert live.pending() == 0
    # a removal after our add is
    payload["occurredAt"] = (ours.at + dt.timedelta(seconds=30)).isoformat()
    handlers.customer_tags_removed(live.shop.domain, payload)
    assert Customer.objects.get(shop=live.shop, shopify_id=a).tags == ["merchant"]
    assert live.pending() == 1
