"""The history backfill's plan: the bulk-operation exports it runs (customers, products, orders in
slices by order number, abandoned checkouts, the variants' unit costs), how each stage's JSONL is
applied to the mirror, and the Shopify calls that start and read the exports."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from segments.mirror.costs import costs_upsert
from segments.mirror.graphql import (
    CUSTOMER_FIELDS, PRODUCT_FIELDS, VARIANT_COST_FIELDS, JsonlGroup, checkout_fields, checkout_record, customer_record,
    order_fields, order_record, product_record, variant_cost_record,
)
from segments.mirror.orders import checkouts_upsert, orders_upsert, products_upsert
from segments.mirror.writer import customers_upsert
from segments.shops.bulk_operations import BulkOperation, bulk_operation_read, bulk_operations_read
from segments.shops.graphql import shop_graphql, with_shop_sender
from segments.shops.models import Shop
from shopseg.shopify.errors import ShopifyQueryError, ShopifyTransientError

RUNNING_EXPORTS = 2          # of the shop's 5 bulk operation slots; the rest stay free for tag syncs
ORDERS_PER_SLICE = 50_000    # roughly, by order numbers; one slice per this many orders
MAX_ORDER_SLICES = 24
# stage statuses
PENDING, RUNNING, COMPLETED, LOADED = "pending", "running", "completed", "loaded"

BULK_RUN = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } }
}"""
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


def _variant_costs(shop: Shop, groups: list[JsonlGroup]) -> None:
    records = (variant_cost_record(g.node) for g in groups)
    costs_upsert(shop=shop, records=[r for r in records if r is not None], current=True)


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
# The variants' costs come last: nothing links to them, and a backfill begun before they were
# exported (adopted by backfill._adopt_unstaged from its one operation) still reaches them.
STAGES: tuple[Stage, ...] = (
    Stage("customers", CUSTOMER_FIELDS, 1000, _customers),
    Stage("products", PRODUCT_FIELDS, 1000, _products),
    Stage("orders", order_fields(), 1000, _orders, search="test:false"),
    Stage("abandonedCheckouts", checkout_fields(), 1000, _checkouts),
    Stage("productVariants", VARIANT_COST_FIELDS, 2000, _variant_costs),
)
STAGE_BY_ROOT = {stage.root: stage for stage in STAGES}


def stage_of(state: dict) -> Stage:
    return dataclasses.replace(STAGE_BY_ROOT[state["root"]], search=state["search"])


def stage_state(stage: Stage, **extra) -> dict:
    return {"root": stage.root, "search": stage.search, "operation": "", "status": PENDING, "objects": 0, **extra}


def bulk_operation(*, shop_id: int, operation_id: str) -> BulkOperation | None:
    return with_shop_sender(shop_id=shop_id, call=lambda sender: bulk_operation_read(sender, operation_id))


def bulk_operations(*, shop_id: int, operation_ids: list[str]) -> dict[str, BulkOperation | None]:
    """Several operations in one call, by id (None for an id Shopify does not know)."""
    return with_shop_sender(shop_id=shop_id, call=lambda sender: bulk_operations_read(sender, operation_ids))


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
def stamp(moment: dt.datetime) -> str:
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
    bounds = [stamp(start + dt.timedelta(seconds=seconds * i // slices)) for i in range(1, slices)]
    lower = [None, *bounds]
    upper = [*bounds, None]
    return [" ".join([base, *([f"created_at:>='{lo}'"] if lo else []), *([f"created_at:<'{hi}'"] if hi else [])])
            for lo, hi in zip(lower, upper)]


def plan(*, shop_id: int) -> list[dict]:
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
            stages += [stage_state(dataclasses.replace(stage, search=search)) for search in searches]
        else:
            stages.append(stage_state(stage))
    return stages


def next_to_load(stages: list[dict]) -> int | None:
    return next((i for i, s in enumerate(stages) if s["status"] != LOADED), None)


def loaded_lines(stages: list[dict]) -> int:
    return sum(s["objects"] for s in stages if s["status"] == LOADED)


def objects_total(stages: list[dict]) -> int | None:
    return sum(s["objects"] for s in stages) if any(s["operation"] for s in stages) else None


def start_exports(*, shop_id: int, stages: list[dict]) -> int:
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
            operation_id = _bulk_run(shop_id=shop_id, stage=stage_of(state))
        except ShopifyTransientError:
            break
        state.update(operation=operation_id, status=RUNNING, objects=0, export_started_at=stamp(timezone.now()))
        started += 1
    return started
