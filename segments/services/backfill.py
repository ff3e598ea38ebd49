"""History backfill: a bulk query per resource, its JSONL streamed into the mirror, resumable by line.

A bulk query may hold one top-level connection (devstore enforces it; Shopify before 2026-01
allowed one operation at a time), so history arrives in stages run one after another: customers
(first, so orders link to full rows rather than stubs), products, orders with line items,
abandoned checkouts. ShopSync says where a shop is:

- `bulk_operation_id`: the current stage's operation (its `query` names the stage);
- `lines_done`: JSONL lines applied over all stages, committed with each batch, so a worker that
  dies resumes after the last committed batch instead of re-running the export;
- `objects_total`: `lines_done` when the stage began plus the operation's objectCount (growing while
  Shopify exports, final once it has finished), so the stage's resume point is
  `lines_done - (objects_total - objectCount)`;
- `updated_at`: the loader's heartbeat; a LOADING row untouched for LOAD_LEASE is free to take over.

Completion arrives by the `bulk_operations/finish` webhook (fast) or `backfills_resume_task`'s
polling (reliable); both call `backfill_advance`, which any number of workers may run at once.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from segments.mirror.cause import BACKFILL, dirty_cause
from segments.mirror.graphql import (
    CUSTOMER_FIELDS, PRODUCT_FIELDS, JsonlGroup, checkout_fields, checkout_record, customer_record,
    jsonl_groups, jsonl_lines, order_fields, order_record, product_record,
)
from segments.mirror.writer import checkouts_upsert, customers_upsert, orders_upsert, products_upsert
from segments.models import BackfillStatus, Shop, ShopStatus, ShopSync, Trigger
from segments.services.reconcile import shop_graphql
from shopseg.enqueue import enqueue_on_commit
from shopseg.shopify.errors import ShopifyQueryError, ShopifyTransientError

log = logging.getLogger(__name__)
# Without read_all_orders Shopify shows only this much order history.
RECENT_ORDERS_ONLY = dt.timedelta(days=60)
LOAD_LEASE = dt.timedelta(minutes=3)
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=300.0)
ACTIVE_OPERATION = {"CREATED", "RUNNING", "CANCELING"}
# A result file that is gone (its URL lives 7 days) means exporting the stage again.
FILE_GONE = {403, 404, 410}

BULK_RUN = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } }
}"""
BULK_OPERATION = """query BulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url query }
}"""


class LoadSuperseded(Exception):
    """Another worker committed this batch first; it owns the load now."""


# -- stages --------------------------------------------------------------------------------------
def _customers(shop: Shop, groups: list[JsonlGroup]) -> None:
    customers_upsert(shop=shop, records=[customer_record(g.node) for g in groups])


def _products(shop: Shop, groups: list[JsonlGroup]) -> None:
    products_upsert(shop=shop, records=[product_record(g.node) for g in groups])


def _orders(shop: Shop, groups: list[JsonlGroup]) -> None:
    records = (order_record(g.node, line_items=g.children_of("LineItem"),
                            shipping_lines=g.children_of("ShippingLine")) for g in groups)
    orders_upsert(shop=shop, records=[r for r in records if r is not None])


def _checkouts(shop: Shop, groups: list[JsonlGroup]) -> None:
    checkouts_upsert(shop=shop, records=[checkout_record(g.node, line_item_count=len(g.children)) for g in groups])


@dataclass(frozen=True)
class Stage:
    root: str
    fields: str
    batch: int                                          # root objects per committed batch
    apply: Callable[[Shop, list[JsonlGroup]], None]
    search: str = ""

    @property
    def query(self) -> str:
        args = f'(query: "{self.search}")' if self.search else ""
        return f"{{ {self.root}{args} {{ edges {{ node {{ {self.fields} }} }} }} }}"


STAGES: tuple[Stage, ...] = (
    Stage("customers", CUSTOMER_FIELDS, 1000, _customers),
    Stage("products", PRODUCT_FIELDS, 1000, _products),
    Stage("orders", order_fields(), 500, _orders, search="test:false"),
    Stage("abandonedCheckouts", checkout_fields(), 1000, _checkouts),
)


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str
    error_code: str | None
    object_count: int
    url: str | None
    stage: int | None       # index in STAGES, None when the query is not one of ours


def _stage_of(query: str) -> int | None:
    found = re.match(r"\s*\{\s*(\w+)", query or "")
    return next((i for i, s in enumerate(STAGES) if found and s.root == found.group(1)), None)


def _bulk_operation(*, shop_id: int, operation_id: str) -> BulkOperation | None:
    node = shop_graphql(shop_id=shop_id, query=BULK_OPERATION, variables={"id": operation_id}).data["bulkOperation"]
    if node is None:
        return None
    return BulkOperation(id=node["id"], status=node["status"], error_code=node.get("errorCode"),
                         object_count=int(node.get("objectCount") or 0), url=node.get("url"),
                         stage=_stage_of(node.get("query")))


def _bulk_run(*, shop_id: int, stage: Stage) -> str:
    """Start a stage's export; returns the operation's id."""
    payload = shop_graphql(shop_id=shop_id, query=BULK_RUN, variables={"query": stage.query}).data
    result = payload["bulkOperationRunQuery"]
    errors = result.get("userErrors") or []
    if any(e.get("code") in ("LIMIT_REACHED", "OPERATION_IN_PROGRESS") for e in errors):
        # Other bulk operations (a tag sync's bulk mutation) hold the shop's slots: try again later.
        raise ShopifyTransientError("bulk operation slots are busy", retry_after=60.0)
    if errors or not result.get("bulkOperation"):
        raise ShopifyQueryError(errors or "bulkOperationRunQuery returned no operation")
    return result["bulkOperation"]["id"]


# -- state changes -------------------------------------------------------------------------------
def _fail(*, sync: ShopSync, reason: str) -> str:
    log.warning("backfill failed for shop %s: %s", sync.shop_id, reason)
    ShopSync.objects.filter(pk=sync.pk).update(backfill_status=BackfillStatus.FAILED, backfill_error=reason[:1000],
                                               backfill_finished_at=timezone.now(), updated_at=timezone.now())
    return BackfillStatus.FAILED


def backfill_start(*, shop_id: int) -> ShopSync:
    """Start the history backfill with its first stage, unless one is under way or done.

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
            operation_id = _bulk_run(shop_id=shop_id, stage=STAGES[0])
        except ShopifyQueryError as exc:
            _fail(sync=sync, reason=f"Shopify refused the export: {exc}")
            sync.refresh_from_db()
            return sync
        now = timezone.now()
        sync.backfill_status, sync.bulk_operation_id = BackfillStatus.RUNNING, operation_id
        sync.objects_total, sync.lines_done, sync.backfill_error = None, 0, ""
        sync.backfill_started_at, sync.backfill_finished_at, sync.updated_at = now, None, now
        sync.history_since = None if shop.has_scope("read_all_orders") else now - RECENT_ORDERS_ONLY
        sync.save()
    log.info("backfill started for shop %s (%s)", shop.domain, operation_id)
    return sync


def backfill_advance(*, shop_id: int) -> str:
    """Move the backfill on and return its status: record a running export's progress, or load a
    finished one and start the next stage. Safe to run from several workers at once."""
    sync = ShopSync.objects.filter(shop_id=shop_id).first()
    if sync is None or sync.backfill_status not in (BackfillStatus.RUNNING, BackfillStatus.LOADING):
        return sync.backfill_status if sync else BackfillStatus.PENDING
    operation = _bulk_operation(shop_id=shop_id, operation_id=sync.bulk_operation_id)
    if operation is None or operation.stage is None:
        return _fail(sync=sync, reason=f"bulk operation {sync.bulk_operation_id} is not a backfill export")
    now = timezone.now()
    mine = ShopSync.objects.filter(pk=sync.pk, bulk_operation_id=operation.id)
    if sync.backfill_status == BackfillStatus.RUNNING:
        if operation.status in ACTIVE_OPERATION:
            mine.filter(backfill_status=BackfillStatus.RUNNING).update(
                objects_total=F("lines_done") + operation.object_count, updated_at=now)
            return BackfillStatus.RUNNING
        if operation.status != "COMPLETED":
            return _fail(sync=sync, reason=f"Shopify's export of {STAGES[operation.stage].root} ended "
                                           f"{operation.status.lower()} ({operation.error_code or 'no error code'})")
        claimed = mine.filter(backfill_status=BackfillStatus.RUNNING).update(
            backfill_status=BackfillStatus.LOADING, objects_total=F("lines_done") + operation.object_count,
            updated_at=now)
    else:
        claimed = mine.filter(backfill_status=BackfillStatus.LOADING, updated_at__lt=now - LOAD_LEASE).update(
            updated_at=now)
    if not claimed:
        return ShopSync.objects.values_list("backfill_status", flat=True).get(pk=sync.pk)   # another worker has it
    sync.refresh_from_db()
    try:
        finished = _load(sync=sync, operation=operation)
        if not finished:
            return _stage_restart(sync=sync, operation=operation)
        return _stage_next(sync=sync, operation=operation)
    except LoadSuperseded:
        return BackfillStatus.LOADING
    except ShopifyQueryError as exc:    # retrying would only repeat it
        return _fail(sync=sync, reason=f"Shopify refused the next export: {exc}")
    except BaseException:
        # Hand the load over at once (a crashed worker's lease instead runs out after LOAD_LEASE).
        ShopSync.objects.filter(pk=sync.pk, backfill_status=BackfillStatus.LOADING).update(
            updated_at=timezone.now() - LOAD_LEASE)
        raise


def _stage_next(*, sync: ShopSync, operation: BulkOperation) -> str:
    following = operation.stage + 1
    mine = ShopSync.objects.filter(pk=sync.pk, bulk_operation_id=operation.id, backfill_status=BackfillStatus.LOADING)
    if following < len(STAGES):
        operation_id = _bulk_run(shop_id=sync.shop_id, stage=STAGES[following])
        mine.update(backfill_status=BackfillStatus.RUNNING, bulk_operation_id=operation_id,
                    objects_total=F("lines_done"), updated_at=timezone.now())
        return BackfillStatus.RUNNING
    # Changes made while the exports ran are caught by reconciliation from the backfill's start.
    mine.update(backfill_status=BackfillStatus.DONE, backfill_finished_at=timezone.now(), updated_at=timezone.now(),
                reconciled_until=Coalesce("reconciled_until", "backfill_started_at"))
    log.info("backfill done for shop %s: %d lines", sync.shop_id, sync.lines_done)
    from segments.tasks.metrics import customer_metrics_rebuild_task   # tasks import this module
    enqueue_on_commit(customer_metrics_rebuild_task, sync.shop_id, Trigger.EVENT, "backfill")
    return BackfillStatus.DONE


def _stage_restart(*, sync: ShopSync, operation: BulkOperation) -> str:
    """The result file is gone: export the stage again; what was applied is upserted again harmlessly."""
    operation_id = _bulk_run(shop_id=sync.shop_id, stage=STAGES[operation.stage])
    stage_start = sync.objects_total - operation.object_count
    ShopSync.objects.filter(pk=sync.pk, bulk_operation_id=operation.id).update(
        backfill_status=BackfillStatus.RUNNING, bulk_operation_id=operation_id, lines_done=stage_start,
        objects_total=stage_start, updated_at=timezone.now())
    return BackfillStatus.RUNNING


# -- loading -------------------------------------------------------------------------------------
def _batches(groups: Iterator[JsonlGroup], size: int) -> Iterator[tuple[list[JsonlGroup], int]]:
    """Whole objects, `size` at a time, with the JSONL lines they used."""
    while batch := list(itertools.islice(groups, size)):
        yield batch, sum(g.lines for g in batch)


def _load(*, sync: ShopSync, operation: BulkOperation) -> bool:
    """Apply the operation's JSONL from the resume point; False when the result file is gone."""
    stage = STAGES[operation.stage]
    done = sync.lines_done
    skip = done - (sync.objects_total - operation.object_count)
    if skip >= operation.object_count:
        return True     # an empty export, or every line is in already
    if operation.url is None:
        return False    # the result has expired
    shop = Shop.objects.get(pk=sync.shop_id)
    try:
        with httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as http, \
                http.stream("GET", operation.url) as response:
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
    except httpx.TransportError as exc:
        raise ShopifyTransientError(f"result file download failed: {type(exc).__name__}") from None
    sync.lines_done = done
    return True


# -- triggers ------------------------------------------------------------------------------------
def backfill_on_bulk_finish(*, shop_domain: str, payload: dict) -> None:
    """bulk_operations/finish: when it is the backfill's current export, load it now, not at the next poll."""
    operation_id = payload.get("admin_graphql_api_id")
    if not operation_id:
        return
    shop_id = (ShopSync.objects.filter(shop__domain=shop_domain, shop__status=ShopStatus.INSTALLED,
                                       bulk_operation_id=operation_id, backfill_status=BackfillStatus.RUNNING)
               .values_list("shop_id", flat=True).first())
    if shop_id is not None:
        from segments.tasks.backfill import backfill_advance_task   # tasks import this module

        enqueue_on_commit(backfill_advance_task, shop_id)


def backfills_due(*, limit: int = 500) -> tuple[list[int], list[int]]:
    """(installed shops whose backfill never started, shops whose export may have ended or whose loader went quiet)."""
    active = Shop.objects.filter(status=ShopStatus.INSTALLED).exclude(shopify_gid="")   # set-up done
    unstarted = list(active.filter(Q(sync__isnull=True) | Q(sync__backfill_status=BackfillStatus.PENDING))
                     .values_list("pk", flat=True)[:limit])
    stalled = list(active.filter(Q(sync__backfill_status=BackfillStatus.RUNNING)
                                 | Q(sync__backfill_status=BackfillStatus.LOADING,
                                     sync__updated_at__lt=timezone.now() - LOAD_LEASE))
                   .values_list("pk", flat=True)[:limit])
    return unstarted, stalled

