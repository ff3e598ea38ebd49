"""History backfill: bulk exports streamed into the mirror, exports running ahead of loading, resumable by line.

A bulk query holds one top-level connection, so history arrives as a list of exports (stages),
loaded strictly in their order: customers first (so orders link to full rows rather than stubs),
products, orders with line items in date slices (oldest first), abandoned checkouts, the variants'
unit costs. Exporting and loading overlap: while one stage loads, the next ones export. Shopify runs
up to 5 bulk operations per shop at once (API 2026-01 and later); the backfill keeps at most
RUNNING_EXPORTS of them busy so tag syncs' bulk mutations still find a slot. Finished exports that
are not loaded yet hold no slot; their files wait (their URLs live 7 days).

ShopSync says where a shop is:

- `stages`: the stages in loading order, each `{root, search, operation, status, objects}` plus
  timestamps; status is pending (not asked for yet), running (Shopify is exporting; `objects` is
  its objectCount so far), completed (file ready), or loaded. It changes only under the row's
  lock (`_refresh`, `_stage_loaded`, `_stage_restart`), never by a plain save, so a loader's
  batch commits and another worker's bookkeeping never overwrite each other;
- `backfill_status`: RUNNING while the next stage to load is still exporting, LOADING while a
  worker loads it (only one stage loads at a time, in order);
- `bulk_operation_id`: the operation of the stage being loaded, or next to load;
- `lines_done`: JSONL lines applied over all stages, committed with each batch, so a worker that
  dies resumes after the last committed batch instead of re-running any export: the loading
  stage's resume point is `lines_done` minus the objects of the stages already loaded;
- `objects_total`: the objectCounts known so far over all stages (the progress bar's total);
- `updated_at`: the loader's heartbeat while LOADING; a load untouched for LOAD_LEASE is free to
  take over.

Completion of any export arrives by the `bulk_operations/finish` webhook (fast) or
`backfills_resume_task`'s polling (reliable); both call `backfill_advance`, which any number of
workers may run at once: it records what Shopify reports, starts the next exports while slots
allow, and loads every stage whose turn has come and whose file is ready. A loader also checks on
the running exports every REFRESH_SECONDS between batches, so the pipeline stays full even while
a single worker is busy loading.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections.abc import Iterator

import httpx
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from segments.engine.triggers import Trigger
from segments.mirror.backfill_plan import (
    COMPLETED, LOADED, PENDING, RUNNING, STAGES, LoadSuperseded, bulk_operation, bulk_operations, loaded_lines,
    next_to_load, objects_total, plan, stage_of, stage_state, stamp, start_exports,
)
from segments.mirror.cause import BACKFILL, dirty_cause
from segments.mirror.graphql import JsonlGroup, jsonl_groups
from segments.mirror.models import BackfillStatus, ShopSync
from segments.mirror.statistics import MIRROR_TABLES, tables_analyze
from segments.shops.bulk_operations import BulkOperation, jsonl_lines, result_file
from segments.shops.models import Shop, ShopStatus
from shopseg.enqueue import enqueue_on_commit
from shopseg.shopify.errors import ShopifyQueryError, ShopifyTransientError

log = logging.getLogger(__name__)
# Without read_all_orders Shopify shows only this much order history.
RECENT_ORDERS_ONLY = dt.timedelta(days=60)
LOAD_LEASE = dt.timedelta(minutes=3)
# A result file that is gone (its URL lives 7 days) means exporting the stage again.
FILE_GONE = {403, 404, 410}
REFRESH_SECONDS = 5.0        # a loader checks on running exports this often between batches

# -- state changes -------------------------------------------------------------------------------
def _fail(*, sync_id: int, shop_id: int, reason: str) -> str:
    log.warning("backfill failed for shop %s: %s", shop_id, reason)
    ShopSync.objects.filter(pk=sync_id).update(backfill_status=BackfillStatus.FAILED, backfill_error=reason[:1000],
                                               backfill_finished_at=timezone.now(), updated_at=timezone.now())
    return BackfillStatus.FAILED


def backfill_start(*, shop_id: int) -> ShopSync:
    """Plan the history backfill and start its first exports, unless one is under way or done.

    A failed backfill starts over (a reinstall runs this again); rows already loaded are simply
    upserted again.
    """
    shop = Shop.objects.get(pk=shop_id)
    ShopSync.objects.get_or_create(shop=shop)
    with transaction.atomic():
        sync = ShopSync.objects.select_for_update().get(shop=shop)
        if sync.backfill_status not in (BackfillStatus.PENDING, BackfillStatus.FAILED):
            return sync
        try:
            stages = plan(shop_id=shop_id)
            if not start_exports(shop_id=shop_id, stages=stages):
                raise ShopifyTransientError("bulk operation slots are busy", retry_after=60.0)
        except ShopifyQueryError as exc:
            _fail(sync_id=sync.pk, shop_id=shop_id, reason=f"Shopify refused the export: {exc}")
            sync.refresh_from_db()
            return sync
        now = timezone.now()
        sync.backfill_status, sync.stages, sync.bulk_operation_id = BackfillStatus.RUNNING, stages, \
            stages[0]["operation"]
        sync.objects_total, sync.lines_done, sync.backfill_error = None, 0, ""
        sync.backfill_started_at, sync.backfill_finished_at, sync.updated_at = now, None, now
        sync.history_since = None if shop.has_scope("read_all_orders") else now - RECENT_ORDERS_ONLY
        sync.save()
    log.info("backfill started for shop %s: %d stages", shop.domain, len(stages))
    return sync


def _refresh(*, sync_id: int, shop_id: int) -> str:
    """Record what Shopify reports of the running exports and start more while slots allow.

    Returns the backfill's status (FAILED when an export ended without its data).
    """
    stages = ShopSync.objects.values_list("stages", flat=True).get(pk=sync_id)
    running = [s["operation"] for s in stages if s["status"] == RUNNING]
    reports = bulk_operations(shop_id=shop_id, operation_ids=running)
    with transaction.atomic():
        sync = ShopSync.objects.select_for_update().get(pk=sync_id)
        if sync.backfill_status not in (BackfillStatus.RUNNING, BackfillStatus.LOADING):
            return sync.backfill_status
        stages = sync.stages
        for state in stages:
            if state["status"] != RUNNING or state["operation"] not in reports:
                continue
            operation = reports[state["operation"]]
            if operation is None or operation.root != state["root"]:
                return _fail(sync_id=sync.pk, shop_id=shop_id,
                             reason=f"bulk operation {state['operation']} is not a backfill export")
            if operation.active:
                state["objects"] = operation.object_count
            elif operation.status == "COMPLETED":
                state.update(status=COMPLETED, objects=operation.object_count,
                             exported_at=stamp(timezone.now()))
            else:
                return _fail(sync_id=sync.pk, shop_id=shop_id,
                             reason=f"Shopify's export of {state['root']} ended {operation.status.lower()} "
                                    f"({operation.error_code or 'no error code'})")
        start_exports(shop_id=shop_id, stages=stages)
        changes = {"stages": stages, "objects_total": objects_total(stages)}
        following = next_to_load(stages)
        if sync.backfill_status == BackfillStatus.RUNNING and following is not None:
            changes["bulk_operation_id"] = stages[following]["operation"]
        ShopSync.objects.filter(pk=sync.pk).update(**changes)
    return sync.backfill_status


def _adopt_unstaged(sync: ShopSync) -> str | None:
    """A backfill begun before exports were tracked per stage: describe it as stages and go on.

    Returns FAILED when its operation is not a backfill export, else None.
    """
    operation = bulk_operation(shop_id=sync.shop_id, operation_id=sync.bulk_operation_id) \
        if sync.bulk_operation_id else None
    index = next((i for i, s in enumerate(STAGES) if operation and s.root == operation.root), None)
    if index is None:
        return _fail(sync_id=sync.pk, shop_id=sync.shop_id,
                     reason=f"bulk operation {sync.bulk_operation_id} is not a backfill export")
    loading = sync.backfill_status == BackfillStatus.LOADING
    stage_start = (sync.objects_total or 0) - operation.object_count if loading else sync.lines_done
    stages = [stage_state(stage, status=LOADED) for stage in STAGES[:index]]
    if stages:
        stages[0]["objects"] = stage_start        # what the earlier stages held, together
    stages.append(stage_state(STAGES[index], operation=operation.id, status=COMPLETED if loading else RUNNING,
                         objects=operation.object_count))
    stages += [stage_state(stage) for stage in STAGES[index + 1:]]
    ShopSync.objects.filter(pk=sync.pk, stages=[]).update(stages=stages)
    return None


def backfill_advance(*, shop_id: int) -> str:
    """Move the backfill on and return its status: record the exports' progress, start the next
    exports, and load every stage whose turn has come and whose file is ready. Safe to run from
    several workers at once: one loads, the others only keep the exports going."""
    sync = ShopSync.objects.filter(shop_id=shop_id).first()
    if sync is None or sync.backfill_status not in (BackfillStatus.RUNNING, BackfillStatus.LOADING):
        return sync.backfill_status if sync else BackfillStatus.PENDING
    if not sync.stages and _adopt_unstaged(sync) == BackfillStatus.FAILED:
        return BackfillStatus.FAILED
    try:
        status = _refresh(sync_id=sync.pk, shop_id=shop_id)
    except ShopifyQueryError as exc:    # retrying would only repeat it
        return _fail(sync_id=sync.pk, shop_id=shop_id, reason=f"Shopify refused the next export: {exc}")
    while status in (BackfillStatus.RUNNING, BackfillStatus.LOADING):
        now = timezone.now()
        sync = ShopSync.objects.get(pk=sync.pk)
        mine = ShopSync.objects.filter(pk=sync.pk, backfill_status=sync.backfill_status)
        if sync.backfill_status == BackfillStatus.RUNNING:
            following = next_to_load(sync.stages)
            if following is None or sync.stages[following]["status"] != COMPLETED:
                return BackfillStatus.RUNNING     # its export has not finished yet
            claimed = mine.update(backfill_status=BackfillStatus.LOADING, updated_at=now,
                                  bulk_operation_id=sync.stages[following]["operation"])
        else:
            claimed = mine.filter(updated_at__lt=now - LOAD_LEASE).update(updated_at=now)
        if not claimed:
            return ShopSync.objects.values_list("backfill_status", flat=True).get(pk=sync.pk)  # another worker
        sync.refresh_from_db()
        try:
            status = _load_current(sync)
            if status in (BackfillStatus.RUNNING, BackfillStatus.LOADING):
                status = _refresh(sync_id=sync.pk, shop_id=shop_id)
        except LoadSuperseded:
            return ShopSync.objects.values_list("backfill_status", flat=True).get(pk=sync.pk)
        except ShopifyQueryError as exc:
            return _fail(sync_id=sync.pk, shop_id=shop_id, reason=f"Shopify refused the next export: {exc}")
        except BaseException:
            # Hand the load over at once (a crashed worker's lease instead runs out after LOAD_LEASE).
            ShopSync.objects.filter(pk=sync.pk, backfill_status=BackfillStatus.LOADING).update(
                updated_at=timezone.now() - LOAD_LEASE)
            raise
    return status


def _load_current(sync: ShopSync) -> str:
    """Load the stage this worker has claimed, from its resume point; returns the status after it."""
    index = next((i for i, s in enumerate(sync.stages)
                  if s["operation"] == sync.bulk_operation_id and s["status"] == COMPLETED), None)
    if index is None:   # nothing of ours to load under that id: let the loop pick the next stage
        ShopSync.objects.filter(pk=sync.pk, backfill_status=BackfillStatus.LOADING,
                                bulk_operation_id=sync.bulk_operation_id).update(backfill_status=BackfillStatus.RUNNING)
        return BackfillStatus.RUNNING
    state = sync.stages[index]
    operation = bulk_operation(shop_id=sync.shop_id, operation_id=state["operation"])
    if operation is None or operation.status != "COMPLETED":
        return _stage_restart(sync=sync, index=index)
    started = time.monotonic()
    if not _load(sync=sync, state=state, operation=operation):
        return _stage_restart(sync=sync, index=index)
    return _stage_loaded(sync=sync, index=index, seconds=time.monotonic() - started)


def _stage_loaded(*, sync: ShopSync, index: int, seconds: float) -> str:
    now = timezone.now()
    with transaction.atomic():
        current = ShopSync.objects.select_for_update().get(pk=sync.pk)
        stages = current.stages
        if current.backfill_status != BackfillStatus.LOADING or current.bulk_operation_id != sync.bulk_operation_id \
                or stages[index]["status"] != COMPLETED:
            raise LoadSuperseded()
        stages[index].update(status=LOADED, loaded_at=stamp(now),
                             load_seconds=round(stages[index].get("load_seconds", 0) + seconds, 2))
        following = next_to_load(stages)
        mine = ShopSync.objects.filter(pk=sync.pk)
        if following is not None:
            mine.update(backfill_status=BackfillStatus.RUNNING, stages=stages, updated_at=now,
                        bulk_operation_id=stages[following]["operation"], objects_total=objects_total(stages))
            return BackfillStatus.RUNNING
        # Changes made while the exports ran are caught by reconciliation from the backfill's start.
        mine.update(backfill_status=BackfillStatus.DONE, stages=stages, backfill_finished_at=now, updated_at=now,
                    objects_total=objects_total(stages),
                    reconciled_until=Coalesce("reconciled_until", "backfill_started_at"))
    log.info("backfill done for shop %s: %d lines", sync.shop_id, current.lines_done)
    # Statistics before the rebuild and every statement after it: the load filled these tables.
    tables_analyze(tables=MIRROR_TABLES)
    enqueue_on_commit("segments.metrics.tasks.customer_metrics_rebuild_task", sync.shop_id, Trigger.EVENT, "backfill")
    return BackfillStatus.DONE


def _stage_restart(*, sync: ShopSync, index: int) -> str:
    """The result file is gone: export the stage again (next in line for a slot); what was applied
    is upserted again harmlessly."""
    with transaction.atomic():
        current = ShopSync.objects.select_for_update().get(pk=sync.pk)
        stages = current.stages
        if current.backfill_status != BackfillStatus.LOADING or current.bulk_operation_id != sync.bulk_operation_id:
            raise LoadSuperseded()
        stages[index].update(operation="", status=PENDING, objects=0)
        ShopSync.objects.filter(pk=sync.pk).update(
            backfill_status=BackfillStatus.RUNNING, stages=stages, bulk_operation_id="",
            lines_done=loaded_lines(stages), objects_total=objects_total(stages), updated_at=timezone.now())
    return BackfillStatus.RUNNING


# -- loading -------------------------------------------------------------------------------------
def _batches(groups: Iterator[JsonlGroup], size: int) -> Iterator[tuple[list[JsonlGroup], int]]:
    """Whole objects, `size` at a time, with the JSONL lines they used."""
    while batch := list(itertools.islice(groups, size)):
        yield batch, sum(g.lines for g in batch)


def _load(*, sync: ShopSync, state: dict, operation: BulkOperation) -> bool:
    """Apply the operation's JSONL from the resume point; False when the result file is gone."""
    stage = stage_of(state)
    done = sync.lines_done
    skip = done - loaded_lines(sync.stages)
    if skip >= operation.object_count:
        return True     # an empty export, or every line is in already
    if operation.url is None:
        return False    # the result has expired
    shop = Shop.objects.get(pk=sync.shop_id)
    checked = time.monotonic()
    try:
        with result_file(operation.url) as response:
            if response.status_code in FILE_GONE:
                return False
            if response.status_code != 200:
                raise ShopifyTransientError(f"result file answered {response.status_code}")
            lines = jsonl_lines(response.iter_bytes(1 << 16))
            for _ in itertools.islice(lines, skip):
                pass
            for batch, used in _batches(jsonl_groups(lines), stage.batch):
                with transaction.atomic():
                    with dirty_cause(BACKFILL):
                        stage.apply(shop, batch)
                    moved = ShopSync.objects.filter(
                        pk=sync.pk, bulk_operation_id=operation.id, backfill_status=BackfillStatus.LOADING,
                        lines_done=done).update(lines_done=done + used, updated_at=timezone.now())
                    if not moved:
                        raise LoadSuperseded()
                done += used
                if time.monotonic() - checked >= REFRESH_SECONDS:
                    _refresh_quietly(sync=sync)
                    checked = time.monotonic()
    except httpx.TransportError as exc:
        raise ShopifyTransientError(f"result file download failed: {type(exc).__name__}") from None
    sync.lines_done = done
    return True


def _refresh_quietly(*, sync: ShopSync) -> None:
    """Between batches: keep the exports going; a hiccup there must not stop the load."""
    try:
        _refresh(sync_id=sync.pk, shop_id=sync.shop_id)
    except (ShopifyTransientError, ShopifyQueryError) as exc:
        log.info("backfill for shop %s: checking the exports failed (%s); loading on", sync.shop_id, exc)


# -- triggers ------------------------------------------------------------------------------------
def backfill_on_bulk_finish(*, shop_domain: str, payload: dict) -> None:
    """bulk_operations/finish: when it is one of the backfill's exports, move the backfill on now, not
    at the next poll (load it if its turn has come, start the next export either way)."""
    operation_id = payload.get("admin_graphql_api_id")
    if not operation_id:
        return
    sync = (ShopSync.objects.filter(shop__domain=shop_domain, shop__status=ShopStatus.INSTALLED,
                                    backfill_status__in=(BackfillStatus.RUNNING, BackfillStatus.LOADING))
            .only("shop_id", "stages", "bulk_operation_id").first())
    if sync is None:
        return
    if operation_id == sync.bulk_operation_id or any(s["operation"] == operation_id for s in sync.stages):

        enqueue_on_commit("segments.mirror.tasks.backfill_advance_task", sync.shop_id)


def backfills_due(*, limit: int = 500) -> tuple[list[int], list[int]]:
    """(installed shops whose backfill never started, shops whose exports may have ended or whose loader went quiet)."""
    active = Shop.objects.filter(status=ShopStatus.INSTALLED).exclude(shopify_gid="")   # set-up done
    unstarted = list(active.filter(Q(sync__isnull=True) | Q(sync__backfill_status=BackfillStatus.PENDING))
                     .values_list("pk", flat=True)[:limit])
    stalled = list(active.filter(Q(sync__backfill_status=BackfillStatus.RUNNING)
                                 | Q(sync__backfill_status=BackfillStatus.LOADING,
                                     sync__updated_at__lt=timezone.now() - LOAD_LEASE))
                   .values_list("pk", flat=True)[:limit])
    return unstarted, stalled
