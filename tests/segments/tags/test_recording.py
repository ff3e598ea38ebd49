"""Recording what Shopify applied: every change Shopify made for us is audited exactly once, when the
worker dies between sending a request and recording its answer (the replay finds the removal done,
by its echo or by sending it again), and when a webhook drain holds the same customers' rows while
the answer is recorded (no deadlock, no retry)."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest
from django.db import connection, connections, transaction

from segments.membership.models import Segment, SegmentStatus, TagChange
from segments.membership.recompute import segments_recompute
from segments.mirror import writer
from segments.mirror.models import Customer
from segments.tags import ledger as tag_ledger
from segments.tags import plans as tag_plans
from segments.tags.ledger import NOOP
from segments.tags.models import CustomerTag, LedgerState, TagAudit, TagResult, TagSource
from segments.tags.sync import shop_tags_sync
from tests.segments.tags.conftest import BUYERS
from webhooks import handlers


def members(tagstore, count: int, tags=None) -> list[int]:
    sids = tagstore.customers(count, tags=tags)
    for sid in sids:
        tagstore.order(sid)
    return sids


def archive_all(tagstore) -> None:
    """The merchant archives the shop's segments: every member leaves, every tag is to go."""
    Segment.objects.filter(shop=tagstore.shop).update(status=SegmentStatus.ARCHIVED)
    segments_recompute(shop=tagstore.shop, segments=list(Segment.objects.filter(shop=tagstore.shop)))


def die_after_the_call(monkeypatch) -> None:
    """The worker is killed once Shopify has answered a request and before the answer is recorded."""
    real = tag_ledger.confirm

    def confirm(**kwargs):
        if kwargs["outcomes"]:
            raise SystemExit("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(tag_ledger, "confirm", confirm)


def now_millis() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def echo(tagstore, event, occurred_at: str | None = None) -> None:
    """Shopify's webhook for a tag event, processed by the app (the fixture's devstore drops deliveries);
    `occurred_at` is when the event happened (now, by default)."""
    topic = {"customer.tags_added": handlers.customer_tags_added,
             "customer.tags_removed": handlers.customer_tags_removed}[event.topic]
    tags = event.extra.get("tags", [])
    topic(tagstore.shop.domain, {"customerId": f"gid://shopify/Customer/{event.id}",
                                 "tags": tags.split(",") if isinstance(tags, str) else list(tags),
                                 "occurredAt": occurred_at or now_millis()})


@pytest.mark.django_db
def test_removals_applied_before_a_worker_died_are_audited_once_whether_or_not_their_echo_came(
        tagstore, monkeypatch):
    # given six customers tagged by the app, whose segment the merchant then archives
    sids = members(tagstore, 6, tags=["merchant"])
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert all(tagstore.tags(sid) == ["merchant", "seg:buyers"] for sid in sids)
    archive_all(tagstore)
    # when the worker sends the removals, Shopify applies them, and the worker dies before recording
    with monkeypatch.context() as patch:
        die_after_the_call(patch)
        with pytest.raises(SystemExit):
            shop_tags_sync(shop_id=tagstore.shop.pk)
    removed = tagstore.tag_events("customer.tags_removed")
    assert len(removed) == 6 and all(tagstore.tags(sid) == ["merchant"] for sid in sids)
    assert not TagAudit.objects.filter(add=False).exists()
    # ...and the echoes of half of them reach the app before the next run
    for event in removed[:3]:
        echo(tagstore, event)
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then each removal Shopify applied is audited exactly once, and none of them is a no-op
    audits = TagAudit.objects.filter(shop=tagstore.shop, add=False)
    assert sorted(audits.values_list("customer_shopify_id", flat=True)) == sorted(e.id for e in removed)
    assert set(audits.values_list("result", "source")) == {(TagResult.APPLIED, TagSource.MEMBERSHIP)}
    assert len(tagstore.tag_events("customer.tags_removed")) == 6       # the replay changed nothing in Shopify
    assert report.calls == 3                                          # only the removals with no echo were sent again
    removals = TagChange.objects.filter(shop=tagstore.shop, add=False)
    assert set(removals.values_list("result", flat=True)) == {TagResult.APPLIED}
    assert not TagChange.objects.filter(result=NOOP).exists() and tagstore.pending() == 0
    assert not TagAudit.objects.filter(source=TagSource.DRIFT).exists()
    assert not CustomerTag.objects.exists()
    assert all(tags == ["merchant"] for tags in Customer.objects.filter(shop=tagstore.shop)
               .values_list("tags", flat=True))


def removal_applied_then_died(tagstore, monkeypatch):
    """One member tagged, its segment archived, and the removal applied by Shopify for a worker
    that died before recording it; returns (the member's Shopify id, the segment)."""
    (sid,) = members(tagstore, 1)
    segment = tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    archive_all(tagstore)
    with monkeypatch.context() as patch:
        die_after_the_call(patch)
        with pytest.raises(SystemExit):
            shop_tags_sync(shop_id=tagstore.shop.pk)
    return sid, segment


@pytest.mark.django_db
def test_the_echo_of_an_unrecorded_removal_is_not_taken_for_drift(tagstore, monkeypatch):
    # given a worker that died after Shopify removed a tag and before recording it
    sid, _ = removal_applied_then_died(tagstore, monkeypatch)
    # when its echo arrives
    (event,) = tagstore.tag_events("customer.tags_removed")
    echo(tagstore, event)
    # then it is our own removal's echo: no drift check is queued, the outbox holds only the removal
    assert list(TagChange.objects.filter(processed_at__isnull=True).values_list("source", flat=True)) == [
        TagSource.MEMBERSHIP]
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert TagAudit.objects.filter(add=False, result=TagResult.APPLIED).count() == 1


@pytest.mark.django_db
def test_a_customer_who_came_back_while_the_removal_was_unrecorded_keeps_the_tag(tagstore, monkeypatch):
    # given a removal applied by Shopify whose worker died, and whose echo reached the mirror
    sid, segment = removal_applied_then_died(tagstore, monkeypatch)
    (event,) = tagstore.tag_events("customer.tags_removed")
    echo(tagstore, event)
    # when the segment is active again before the next run
    Segment.objects.filter(pk=segment.pk).update(status=SegmentStatus.ACTIVE)
    segments_recompute(shop=tagstore.shop, segments=[Segment.objects.get(pk=segment.pk)])
    shop_tags_sync(shop_id=tagstore.shop.pk)
    # then both changes are audited as the membership's (not as drift), and the tag is back
    assert tagstore.tags(sid) == ["seg:buyers"]
    assert list(TagAudit.objects.filter(shop=tagstore.shop).order_by("id").values_list("add", "result", "source")) == [
        (True, TagResult.APPLIED, TagSource.MEMBERSHIP), (False, TagResult.APPLIED, TagSource.MEMBERSHIP),
        (True, TagResult.APPLIED, TagSource.MEMBERSHIP)]
    assert CustomerTag.objects.get().state == LedgerState.ACTIVE


@pytest.mark.django_db
def test_an_unrecorded_removal_is_audited_when_it_was_sent_so_later_tag_events_still_apply(tagstore, monkeypatch):
    # given a removal Shopify applied for a worker that died before recording it, echoed to the mirror
    sid, _ = removal_applied_then_died(tagstore, monkeypatch)
    (removed,) = tagstore.tag_events("customer.tags_removed")
    echo(tagstore, removed)
    # when a staff member puts the tag back by hand, the replay runs, and only then does the staff
    # member's customer.tags_added arrive
    tagstore.hand_edit(sid, add=["seg:buyers"])
    edited_at = now_millis()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    (added,) = tagstore.tag_events("customer.tags_added")[1:]
    echo(tagstore, added, occurred_at=edited_at)
    # then the removal is audited as of when it was sent, so the later hand edit is not taken for a
    # stale event: the mirror holds the tag, as Shopify does
    audit = TagAudit.objects.get(add=False)
    assert audit.result == TagResult.APPLIED and audit.at < dt.datetime.fromisoformat(edited_at)
    assert tagstore.tags(sid) == ["seg:buyers"]
    assert Customer.objects.get(shop=tagstore.shop, shopify_id=sid).tags == ["seg:buyers"]


@pytest.mark.django_db
def test_an_unrecorded_add_whose_customer_left_before_the_replay_is_audited_with_its_removal(tagstore, monkeypatch):
    # given an add Shopify applied for a worker that died before recording it, echoed to the mirror
    (sid,) = members(tagstore, 1)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    with monkeypatch.context() as patch:
        die_after_the_call(patch)
        with pytest.raises(SystemExit):
            shop_tags_sync(shop_id=tagstore.shop.pk)
    (added,) = tagstore.tag_events("customer.tags_added")
    echo(tagstore, added)
    # when the customer leaves before the next run
    archive_all(tagstore)
    shop_tags_sync(shop_id=tagstore.shop.pk)
    # then both changes Shopify applied are audited, once each
    assert tagstore.tags(sid) == [] and len(tagstore.tag_events("customer.tags_removed")) == 1
    assert list(TagAudit.objects.filter(shop=tagstore.shop).order_by("id").values_list("add", "result")) == [
        (True, TagResult.APPLIED), (False, TagResult.APPLIED)]
    assert tagstore.pending() == 0 and not CustomerTag.objects.exists()


# -- against a webhook drain ---------------------------------------------------------------------------
def _waiting_on_a_lock(pid: int) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_recording_never_deadlocks_with_a_drain_holding_the_same_customers(tagstore, caplog):
    # given two customers about to be tagged, the drain holding the one the sync reaches last (in
    # the outbox's order and in id order alike)
    first, second = members(tagstore, 2)
    tagstore.segment("buyers", BUYERS)
    for sid in (first, second):
        tagstore.recompute(customer_ids=[tagstore.pk(sid)])
    assert tag_plans.claim_batch(shop=tagstore.shop, customers=10)[0] == sorted([tagstore.pk(first),
                                                                                 tagstore.pk(second)])
    connection.ensure_connection()
    sync_pid = connection.connection.info.backend_pid
    locked, errors, sync_waited = threading.Event(), [], []

    def drain() -> None:
        """A drain's batch: one transaction applying customer.tags_added deliveries (a merchant's
        tag on each), the second customer's first; it reaches the first customer only once the
        sync is waiting for the second (or after a few seconds)."""
        try:
            with transaction.atomic():
                writer.customer_tags_apply(shop=tagstore.shop, shopify_id=second, added=["vip"])
                locked.set()
                deadline = time.monotonic() + 8
                while time.monotonic() < deadline and not sync_waited:
                    if _waiting_on_a_lock(sync_pid):
                        sync_waited.append(True)
                    time.sleep(0.02)
                writer.customer_tags_apply(shop=tagstore.shop, shopify_id=first, added=["vip"])
        except Exception as exc:     # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    caplog.set_level(logging.WARNING)
    thread = threading.Thread(target=drain)
    thread.start()
    assert locked.wait(10)
    # when the sync records Shopify's answer while the drain holds one customer and wants the other
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    thread.join(30)
    # then neither side deadlocked, and both writes are there
    assert sync_waited, "the sync never waited for the drain's customer: the test proves nothing"
    assert errors == [] and "deadlock" not in caplog.text
    assert report.stopped == "" and tagstore.pending() == 0
    assert TagAudit.objects.filter(shop=tagstore.shop, result=TagResult.APPLIED).count() == 2
    assert all(tagstore.tags(sid) == ["seg:buyers"] for sid in (first, second))
    assert all(sorted(tags) == ["seg:buyers", "vip"] for tags in Customer.objects.filter(shop=tagstore.shop)
               .values_list("tags", flat=True))
