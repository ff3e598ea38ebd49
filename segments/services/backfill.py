"""History backfill: bulk exports streamed into the mirror, exports running ahead of loading, resumable by line.

A bulk query holds one top-level connection, so history arrives as a list of exports (stages),
loaded strictly in their order: customers first (so orders link to full rows rather than stubs),
products, orders with line items in date slices (oldest first), abandoned checkouts. Exporting
and loading overlap: while one stage loads, the next ones export. Shopify runs up to 5 bulk
operations per shop at once (API 2026-01 and later); the backfill keeps at most RUNNING_EXPORTS of
them busy so tag syncs' bulk mutations still find a slot. Finished exports that are not loaded
yet hold no slot; their files wait (their URLs live 7 days).

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

import dataclasses
import datetime as dt
import itertools
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from segments.mirror.cause import BACKFILL, dirty_cause
from segments.mirror.graphql import (
    CUSTOMER_FIELDS, PRODUCT_FIELDS, JsonlGroup, checkout_fields, checkout_record, customer_record,
    jsonl_groups, jsonl_lines, order_fields, order_record, product_record,
)
from segments.mirror.writer import checkouts_upsert, customers_upsert, orders_upsert, products_upsert
from segments.models import BackfillStatus, Shop, ShopStatus, ShopSync, Trigger
from segments.services.shop_graphql import shop_graphql
from segments.services.table_statistics import MIRROR_TABLES, tables_analyze
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
RUNNING_EXPORTS = 2          # of the shop's 5 bulk operation slots; the rest stay free for tag syncs
ORDERS_PER_SLICE = 50_000    # roughly, by order numbers; one slice per this many orders
MAX_ORDER_SLICES = 24
REFRESH_SECONDS = 5.0        # a loader checks on running exports this often between batches

# stage statuses
PENDING, RUNNING, COMPLETED, LOADED = "pending", "running", "completed", "loaded"

BULK_RUN = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } }
}"""
BULK_OPERATION = """query BulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url query }
}"""
BULK_OPERATION_FIELDS = "id status errorCode objectCount url query"
# The creation times of the first and last order (the span to slice), and the numbers of the first
# and last order by id (how many orders there are, near enough).
ORDER_SPAN = """query OrderSpan {
  oldest: orders(first: 1, sortKey: CREATED_AT, query: "test:false") { nodes { createdAt } }
  newest: orders(first: 1, sortKey: CREATED_AT, reverse: true, query: "test:false") { nodes { createdAt } }
  lowest: orders(first: 1, sortKey: ID) { nodes { name } }
  highest: orders(first: 1, sortKey: ID, reverse: true) { nodes { name } }
}"""


class LoadSuperseded(Exception):
    """Another worker committed this batch first, or the backfill moved on; it is not ours to load now."""


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


# The resources in loading order; the orders stage is split into date slices when a shop has many.
STAGES: tuple[Stage, ...] = (
    Stage("customers", CUSTOMER_FIELDS, 1000, _customers),
    Stage("products", PRODUCT_FIELDS, 1000, _products),
    Stage("orders", order_fields(), 1000, _orders, search="test:false"),
    Stage("abandonedCheckouts", checkout_fields(), 1000, _checkouts),
)
STAGE_BY_ROOT = {stage.root: stage for stage in STAGES}


def _stage_of(state: dict) -> Stage:
    return dataclasses.replace(STAGE_BY_ROOT[state["root"]], search=state["search"])


def _state(stage: Stage, **extra) -> dict:
    return {"root": stage.root, "search": stage.search, "operation": "", "status": PENDING, "objects": 0, **extra}


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str
    error_code: str | None
    object_count: int
    url: str | None
    root: str | None        # the query's top-level connection


def _root_of(query: str | None) -> str | None:
    found = re.match(r"\s*\{\s*(\w+)", query or "")
    return found.group(1) if found else None


def _operation(node: dict | None) -> BulkOperation | None:
    if node is None:
        return None
    return BulkOperation(id=node["id"], status=node["status"], error_code=node.get("errorCode"),
                         object_count=int(node.get("objectCount") or 0), url=node.get("url"),
                         root=_root_of(node.get("query")))


def _bulk_operation(*, shop_id: int, operation_id: str) -> BulkOperation | None:
    data = shop_graphql(shop_id=shop_id, query=BULK_OPERATION, variables={"id": operation_id}).data
    return _operation(data["bulkOperation"])


def bulk_operations_document(count: int) -> str:
    """One query for `count` operations by id: variables $id0, $id1, …; fields op0, op1, …."""
    params = ", ".join(f"$id{i}: ID!" for i in range(count))
    body = " ".join(f"op{i}: bulkOperation(id: $id{i}) {{ {BULK_OPERATION_FIELDS} }}" for i in range(count))
    return f"query BulkOperations({params}) {{ {body} }}"


def _bulk_operations(*, shop_id: int, operation_ids: list[str]) -> dict[str, BulkOperation | None]:
    """Several operations in one call, by id (None for an id Shopify does not know)."""
    if not operation_ids:
        return {}
    data = shop_graphql(shop_id=shop_id, query=bulk_operations_document(len(operation_ids)),
                        variables={f"id{i}": op for i, op in enumerate(operation_ids)}).data
    return {op: _operation(data.get(f"op{i}")) for i, op in enumerate(operation_ids)}


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


# -- planning ------------------------------------------------------------------------------------
def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _order_number(name: str | None) -> int | None:
    """The number in an order's name (`#1001`, or with the shop's own prefix and suffix)."""
    digits = re.findall(r"\d+", name or "")
    return int(digits[-1]) if digits else None


def order_count_estimate(*, lowest: str | None, highest: str | None) -> int:
    """How many orders a shop has, from the names of its first and last order by id: a shop numbers
    its orders in sequence (test and deleted orders take numbers too, so this is an upper bound).
    0 when the names carry no number."""
    first, last = _order_number(lowest), _order_number(highest)
    return last - first + 1 if first is not None and last is not None and last >= first else 0


def order_slices(*, oldest_at: str | None, newest_at: str | None, orders: int, per_slice: int,
                 most: int) -> list[str]:
    """Search strings that split the orders export into date slices of about `per_slice` orders.

    The span between the first and last order's creation is cut into equal parts; the first slice
    has no lower bound and the last no upper bound, so together they cover every order exactly
    once, including one placed while the backfill runs.
    """
    base = STAGE_BY_ROOT["orders"].search
    if not oldest_at or not newest_at:
        return [base]
    start = dt.datetime.fromisoformat(oldest_at.replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(newest_at.replace("Z", "+00:00"))
    seconds = int((end - start).total_seconds())
    slices = max(1, min(most, math.ceil(orders / per_slice), seconds))
    if slices == 1:
        return [base]
    bounds = [_stamp(start + dt.timedelta(seconds=seconds * i // slices)) for i in range(1, slices)]
    lower = [None, *bounds]
    upper = [*bounds, None]
    return [" ".join([base, *([f"created_at:>='{lo}'"] if lo else []), *([f"created_at:<'{hi}'"] if hi else [])])
            for lo, hi in zip(lower, upper)]


def _plan(*, shop_id: int) -> list[dict]:
    """Every stage of a new backfill, in loading order, none started."""
    span = shop_graphql(shop_id=shop_id, query=ORDER_SPAN).data

    def first(alias: str, field: str) -> str | None:
        nodes = (span.get(alias) or {}).get("nodes") or []
        return nodes[0].get(field) if nodes else None

    searches = order_slices(oldest_at=first("oldest", "createdAt"), newest_at=first("newest", "createdAt"),
                            orders=order_count_estimate(lowest=first("lowest", "name"),
                                                        highest=first("highest", "name")),
                            per_slice=ORDERS_PER_SLICE, most=MAX_ORDER_SLICES)
    stages: list[dict] = []
    for stage in STAGES:
        if stage.root == "orders":
            stages += [_state(dataclasses.replace(stage, search=search)) for search in searches]
        else:
            stages.append(_state(stage))
    return stages


def _next_to_load(stages: list[dict]) -> int | None:
    return next((i for i, s in enumerate(stages) if s["status"] != LOADED), None)


def _loaded_lines(stages: list[dict]) -> int:
    return sum(s["objects"] for s in stages if s["status"] == LOADED)


def _objects_total(stages: list[dict]) -> int | None:
    return sum(s["objects"] for s in stages) if any(s["operation"] for s in stages) else None


def _start_exports(*, shop_id: int, stages: list[dict]) -> int:
    """Start pending stages, in order, while fewer than RUNNING_EXPORTS run; returns how many started.

    Busy slots (another app feature's bulk operation) just leave the rest for a later call.
    """
    started = 0
    for state in stages:
        if sum(s["status"] == RUNNING for s in stages) >= RUNNING_EXPORTS:
            break
        if state["status"] != PENDING:
            continue
        try:
            operation_id = _bulk_run(shop_id=shop_id, stage=_stage_of(state))
        except ShopifyTransientError:
            break
        state.update(operation=operation_id, status=RUNNING, objects=0, export_started_at=_stamp(timezone.now()))
        started += 1
    return started


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
            stages = _plan(shop_id=shop_id)
            if not _start_exports(shop_id=shop_id, stages=stages):
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
    reports = _bulk_operations(shop_id=shop_id, operation_ids=running)
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
            if operation.status in ACTIVE_OPERATION:
                state["objects"] = operation.object_count
            elif operation.status == "COMPLETED":
                state.update(status=COMPLETED, objects=operation.object_count,
                             exported_at=_stamp(timezone.now()))
            else:
                return _fail(sync_id=sync.pk, shop_id=shop_id,
                             reason=f"Shopify's export of {state['root']} ended {operation.status.lower()} "
                                    f"({operation.error_code or 'no error code'})")
        _start_exports(shop_id=shop_id, stages=stages)
        changes = {"stages": stages, "objects_total": _objects_total(stages)}
        following = _next_to_load(stages)
        if sync.backfill_status == BackfillStatus.RUNNING and following is not None:
            changes["bulk_operation_id"] = stages[following]["operation"]
        ShopSync.objects.filter(pk=sync.pk).update(**changes)
    return sync.backfill_status


def _adopt_unstaged(sync: ShopSync) -> str | None:
    """A backfill begun before exports were tracked per stage: describe it as stages and go on.

    Returns FAILED when its operation is not a backfill export, else None.
    """
    operation = _bulk_operation(shop_id=sync.shop_id, operation_id=sync.bulk_operation_id) \
        if sync.bulk_operation_id else None
    index = next((i for i, s in enumerate(STAGES) if operation and s.root == operation.root), None)
    if index is None:
        return _fail(sync_id=sync.pk, shop_id=sync.shop_id,
                     reason=f"bulk operation {sync.bulk_operation_id} is not a backfill export")
    loading = sync.backfill_status == BackfillStatus.LOADING
    stage_start = (sync.objects_total or 0) - operation.object_count if loading else sync.lines_done
    stages = [_state(stage, status=LOADED) for stage in STAGES[:index]]
    if stages:
        stages[0]["objects"] = stage_start        # what the earlier stages held, together
    stages.append(_state(STAGES[index], operation=operation.id, status=COMPLETED if loading else RUNNING,
                         objects=operation.object_count))
    stages += [_state(stage) for stage in STAGES[index + 1:]]
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
            following = _next_to_load(sync.stages)
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
    operation = _bulk_operation(shop_id=sync.shop_id, operation_id=state["operation"])
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
        stages[index].update(status=LOADED, loaded_at=_stamp(now),
                             load_seconds=round(stages[index].get("load_seconds", 0) + seconds, 2))
        following = _next_to_load(stages)
        mine = ShopSync.objects.filter(pk=sync.pk)
        if following is not None:
            mine.update(backfill_status=BackfillStatus.RUNNING, stages=stages, updated_at=now,
                        bulk_operation_id=stages[following]["operation"], objects_total=_objects_total(stages))
            return BackfillStatus.RUNNING
        # Changes made while the exports ran are caught by reconciliation from the backfill's start.
        mine.update(backfill_status=BackfillStatus.DONE, stages=stages, backfill_finished_at=now, updated_at=now,
                    objects_total=_objects_total(stages),
                    reconciled_until=Coalesce("reconciled_until", "backfill_started_at"))
    log.info("backfill done for shop %s: %d lines", sync.shop_id, current.lines_done)
    # Statistics before the rebuild and every statement after it: the load filled these tables.
    tables_analyze(tables=MIRROR_TABLES)
    from segments.tasks.metrics import customer_metrics_rebuild_task   # tasks import this module
    enqueue_on_commit(customer_metrics_rebuild_task, sync.shop_id, Trigger.EVENT, "backfill")
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
            lines_done=_loaded_lines(stages), objects_total=_objects_total(stages), updated_at=timezone.now())
    return BackfillStatus.RUNNING


# -- loading -------------------------------------------------------------------------------------
def _batches(groups: Iterator[JsonlGroup], size: int) -> Iterator[tuple[list[JsonlGroup], int]]:
    """Whole objects, `size` at a time, with the JSONL lines they used."""
    while batch := list(itertools.islice(groups, size)):
        yield batch, sum(g.lines for g in batch)


def _load(*, sync: ShopSync, state: dict, operation: BulkOperation) -> bool:
    """Apply the operation's JSONL from the resume point; False when the result file is gone."""
    stage = _stage_of(state)
    done = sync.lines_done
    skip = done - _loaded_lines(sync.stages)
    if skip >= operation.object_count:
        return True     # an empty export, or every line is in already
    if operation.url is None:
        return False    # the result has expired
    shop = Shop.objects.get(pk=sync.shop_id)
    checked = time.monotonic()
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
        from segments.tasks.backfill import backfill_advance_task   # tasks import this module

        enqueue_on_commit(backfill_advance_task, sync.shop_id)


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
