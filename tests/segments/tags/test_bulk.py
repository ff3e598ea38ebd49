"""The bulk path: a diff over many customers becomes stagedUploadsCreate + upload +
bulkOperationRunMutation against devstore, with per-line results applied like direct answers."""
from __future__ import annotations

import time

import pytest

from segments.membership.models import Segment, SegmentStatus, TagChange
from segments.membership.recompute import segments_recompute
from segments.tags import bulk as tag_bulk
from segments.tags import ledger as tag_ledger
from segments.tags import plans as tag_plans
from segments.tags.models import BulkStatus, CustomerTag, LedgerState, TagAudit, TagBulkOperation, TagResult
from segments.tags.sync import shop_tags_sync
from tests.segments.tags.conftest import BUYERS

pytestmark = pytest.mark.django_db


def sync_until_idle(tagstore, timeout: float = 30.0) -> list:
    """Run tag sync as the beat would, until no bulk operation is active and nothing is due."""
    reports = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports.append(shop_tags_sync(shop_id=tagstore.shop.pk))
        active = TagBulkOperation.objects.filter(shop=tagstore.shop, status__in=tag_bulk.ACTIVE).exists()
        if not active and not tagstore.pending():
            return reports
        time.sleep(0.1)
    raise AssertionError("tag sync did not finish")


@pytest.fixture
def bulk(settings):
    # The setting is raised to what the Standard bucket absorbs at once (200 customers).
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 10


def test_a_large_diff_runs_as_bulk_mutations(tagstore, bulk):
    # given 205 new members (over the threshold of 200) with the merchant's tags, one deleted in Shopify
    assert tag_bulk.bulk_threshold(shop=tagstore.shop) == 200
    sids = tagstore.customers(205, tags=["merchant"])
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    with tagstore.devstore.store.tx() as conn:
        conn.execute("DELETE FROM customers WHERE id = ?", (sids[-1],))
    # when synced
    reports = sync_until_idle(tagstore)
    # then one bulk tagsAdd did it all: no direct tag mutations, results applied per line
    assert sum(r.requests for r in reports) >= 3   # stage, run, poll (no aliased tag requests)
    op = TagBulkOperation.objects.get()
    assert (op.add, op.status, op.line_count, op.applied, op.errors) == (True, BulkStatus.COMPLETED, 205, 205, 1)
    assert all(tagstore.tags(sid) == ["merchant", "seg:buyers"] for sid in sids[:-1])
    audits = TagAudit.objects.filter(shop=tagstore.shop)
    assert audits.filter(result=TagResult.APPLIED, bulk=op).count() == 204
    assert audits.get(result=TagResult.CUSTOMER_GONE).customer_shopify_id == sids[-1]
    assert set(CustomerTag.objects.values_list("state", flat=True)) == {LedgerState.ACTIVE}
    assert tagstore.pending() == 0
    assert len(tagstore.tag_events("customer.tags_added")) == 204

    # when the segment is archived, everyone leaves: one bulk tagsRemove; the merchant's tags stay
    Segment.objects.filter(shop=tagstore.shop).update(status=SegmentStatus.ARCHIVED)
    segments_recompute(shop=tagstore.shop, segments=list(Segment.objects.filter(shop=tagstore.shop)))
    sync_until_idle(tagstore)
    remove = TagBulkOperation.objects.get(add=False)
    assert (remove.status, remove.line_count) == (BulkStatus.COMPLETED, 204)
    assert all(tagstore.tags(sid) == ["merchant"] for sid in sids[:-1])
    assert not CustomerTag.objects.exists()


def test_changes_during_a_bulk_operation_wait_for_it(tagstore, bulk, settings):
    sids = tagstore.customers(201)
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)           # starts the bulk operation
    op = TagBulkOperation.objects.get()
    assert TagChange.objects.filter(bulk=op).count() == 201
    # a change for a claimed customer arrives meanwhile: the direct path leaves the customer alone
    claimed = tagstore.pk(sids[0])
    TagChange.objects.create(shop=tagstore.shop, customer_id=claimed, tag="", add=True, created_at=op.created_at,
                             source="resync")
    assert claimed not in tag_plans.claim_batch(shop=tagstore.shop, customers=100)[0]
    sync_until_idle(tagstore)
    assert all(tagstore.tags(sid) == ["seg:buyers"] for sid in sids)
    assert TagAudit.objects.filter(shop=tagstore.shop).count() == 201


def test_applying_results_resumes_where_a_dead_worker_stopped(tagstore, bulk, monkeypatch):
    sids = tagstore.customers(201)
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    monkeypatch.setattr(tag_bulk, "APPLY_CHUNK", 80)
    shop_tags_sync(shop_id=tagstore.shop.pk)
    op = TagBulkOperation.objects.get()
    assert tagstore.devstore.server.app.admin_api.bulk.wait(int(op.shopify_gid.rsplit("/", 1)[1]), timeout=10)
    # when the worker applying the results dies after the first chunk
    real_confirm, calls = tag_ledger.confirm, []

    def dying_confirm(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real_confirm(**kwargs)

    monkeypatch.setattr(tag_ledger, "confirm", dying_confirm)
    with pytest.raises(SystemExit):
        shop_tags_sync(shop_id=tagstore.shop.pk)
    monkeypatch.setattr(tag_ledger, "confirm", real_confirm)
    assert TagBulkOperation.objects.get().applied == 80
    # then the next run applies the rest, and nothing is audited twice
    sync_until_idle(tagstore)
    assert TagAudit.objects.filter(shop=tagstore.shop).count() == 201
    assert TagBulkOperation.objects.get().status == BulkStatus.COMPLETED
    assert all(tagstore.tags(sid) == ["seg:buyers"] for sid in sids)


def test_below_the_threshold_the_direct_path_is_used(tagstore, bulk):
    sids = tagstore.customers(199)
    for sid in sids:
        tagstore.order(sid)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    assert not TagBulkOperation.objects.exists()
    assert (report.calls, report.requests) == (199, 3)
