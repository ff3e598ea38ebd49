"""Reconciliation: re-read what Shopify changed since the watermark and repair what webhooks missed.

Webhook delivery is at-least-once but not guaranteed (a subscription can be removed, a delivery
can run out of retries), so Shopify recommends this periodic pass. It pages through
`updated_at:>` queries within the cost budget and writes only rows the mirror lacks or holds in
an older version, so `last_reconcile_repaired` counts real repairs.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from time import sleep

from django.db import models
from django.utils import timezone

from segments.mirror.cause import RECONCILE, dirty_cause
from segments.mirror.graphql import (
    CUSTOMER_FIELDS, LINE_ITEM_FIELDS, PRODUCT_FIELDS, checkout_fields, checkout_record,
    customer_record, edge_nodes, gid_number, order_fields, order_record, product_record,
)
from segments.mirror.writer import checkouts_upsert, customers_upsert, orders_delete, orders_upsert, products_upsert
from segments.models import BackfillStatus, Checkout, Customer, Order, Product, Shop, ShopStatus, ShopSync
from segments.services.tokens import with_shop_client
from shopseg.shopify.client import GraphQLResult
from shopseg.shopify.errors import ShopifyTransientError

log = logging.getLogger(__name__)
# Shopify's and our clocks disagree a little, and a change can commit after its updated_at: re-read a margin.
OVERLAP = dt.timedelta(minutes=5)
# How long one call may spend waiting out throttling or 5xx before it gives up and the task retries later.
MAX_TRANSIENT_WAIT = 120.0


def shop_graphql(*, shop_id: int, query: str, variables: dict | None = None) -> GraphQLResult:
    """One Admin API call that sleeps through THROTTLED / 429 / 5xx answers (bounded), then raises."""
    waited, attempt = 0.0, 0
    while True:
        try:
            return with_shop_client(shop_id=shop_id, call=lambda client: client.graphql(query, variables))
        except ShopifyTransientError as exc:
            attempt += 1
            wait = exc.retry_after if exc.retry_after is not None else min(2.0 ** attempt, 30.0)
            if waited + wait > MAX_TRANSIENT_WAIT:
                raise
            sleep(wait + random.uniform(0, 0.1 * wait + 0.05))
            waited += wait


def _pace(result: GraphQLResult) -> None:
    """Before the next page, wait until the bucket holds what this page asked for."""
    if result.throttle is not None and result.requested_cost:
        wait = result.throttle.wait_for(float(result.requested_cost))
        if wait > 0:
            sleep(wait)


def _stale_keys(*, model: type[models.Model], shop: Shop, key: str, stamps: dict) -> set:
    """Keys whose row is missing, a stub (no updated_at) or older than `stamps[key]`."""
    held = dict(model.objects.filter(shop=shop, **{f"{key}__in": list(stamps)}).values_list(key, "updated_at"))
    return {k for k, stamp in stamps.items()
            if k not in held or held[k] is None or (stamp is not None and held[k] < stamp)}


# -- resources -----------------------------------------------------------------------------------
def _customers(shop: Shop, nodes: list[dict]) -> int:
    records = [customer_record(n) for n in nodes]
    stale = _stale_keys(model=Customer, shop=shop, key="shopify_id",
                        stamps={r.shopify_id: r.updated_at for r in records})
    return len(customers_upsert(shop=shop, records=[r for r in records if r.shopify_id in stale]))


def _products(shop: Shop, nodes: list[dict]) -> int:
    records = [product_record(n) for n in nodes]
    stale = _stale_keys(model=Product, shop=shop, key="shopify_id",
                        stamps={r.shopify_id: r.updated_at for r in records})
    return products_upsert(shop=shop, records=[r for r in records if r.shopify_id in stale])


ORDER_LINE_ITEMS = f"""query OrderLineItems($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: 50, after: $after) {{
    edges {{ node {{ {LINE_ITEM_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}
}}"""


def _all_line_items(shop: Shop, node: dict) -> list[dict]:
    """The order's line items, fetching the pages beyond the first nested one."""
    connection = node.get("lineItems") or {}
    items = edge_nodes(connection)
    while (connection.get("pageInfo") or {}).get("hasNextPage"):
        result = shop_graphql(shop_id=shop.pk, query=ORDER_LINE_ITEMS,
                              variables={"id": node["id"], "after": connection["pageInfo"]["endCursor"]})
        connection = ((result.data.get("order") or {}).get("lineItems")) or {}
        items += edge_nodes(connection)
        _pace(result)
    return items


def _orders(shop: Shop, nodes: list[dict]) -> int:
    """Orders newer than the mirror's, and the removal of any that turned out to be test orders."""
    real = [n for n in nodes if not n.get("test")]
    turned_test = orders_delete(shop=shop, shopify_ids=[gid_number(n["id"]) for n in nodes if n.get("test")])
    stamps = {gid_number(n["id"]): dt.datetime.fromisoformat(n["updatedAt"]) for n in real}
    stale = _stale_keys(model=Order, shop=shop, key="shopify_id", stamps=stamps)
    # Line items beyond the nested page are fetched only for the orders that need writing.
    records = [order_record(n, line_items=_all_line_items(shop, n)) for n in real if gid_number(n["id"]) in stale]
    return turned_test + len(orders_upsert(shop=shop, records=records))


def _checkouts(shop: Shop, nodes: list[dict]) -> int:
    records = [checkout_record(n) for n in nodes]
    stale = _stale_keys(model=Checkout, shop=shop, key="token", stamps={r.token: r.updated_at for r in records})
    return checkouts_upsert(shop=shop, records=[r for r in records if r.token in stale])


@dataclass(frozen=True)
class Resource:
    root: str
    fields: str
    page: int                                   # first: sized to stay well under the 1,000-point query cap
    apply: Callable[[Shop, list[dict]], int]    # writes a page, returns how many rows it repaired

    @property
    def query(self) -> str:
        return (f"query Changed($query: String!, $after: String) {{ {self.root}(first: {self.page}, "
                f"query: $query, after: $after) {{ edges {{ node {{ {self.fields} }} }} "
                f"pageInfo {{ hasNextPage endCursor }} }} }}")


# Customers first, so orders and checkouts link to full rows rather than stubs. Page sizes keep the
# requested cost near 750 of the 1,000-point cap (a customer costs ~3 points, a product 1, an order with
# ten nested line items ~94, a checkout with 25 counted lines ~31); Shopify refunds what is not used.
RESOURCES = (
    Resource("customers", CUSTOMER_FIELDS, 250, _customers),
    Resource("products", PRODUCT_FIELDS, 250, _products),
    Resource("orders", order_fields(page=10), 8, _orders),
    Resource("abandonedCheckouts", checkout_fields(page=25), 24, _checkouts),
)


def _reconcile_resource(*, shop: Shop, resource: Resource, search: str) -> int:
    repaired, after = 0, None
    while True:
        result = shop_graphql(shop_id=shop.pk, query=resource.query, variables={"query": search, "after": after})
        connection = result.data[resource.root]
        repaired += resource.apply(shop, edge_nodes(connection))
        if not connection["pageInfo"]["hasNextPage"]:
            return repaired
        after = connection["pageInfo"]["endCursor"]
        _pace(result)


def shop_reconcile(*, shop_id: int) -> int:
    """Repair the mirror from Shopify's changes since the watermark; returns the rows repaired.

    The watermark moves to this run's start only when every resource was read, so a failed run
    is simply repeated (writes are idempotent).
    """
    shop = Shop.objects.get(pk=shop_id)
    sync = ShopSync.objects.get(shop=shop)
    started = timezone.now()
    since = (sync.reconciled_until or sync.backfill_started_at or started) - OVERLAP
    search = f"updated_at:>'{since.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}'"
    with dirty_cause(RECONCILE):
        repaired = sum(_reconcile_resource(shop=shop, resource=r, search=search) for r in RESOURCES)
    ShopSync.objects.filter(pk=sync.pk).update(reconciled_until=started, last_reconcile_at=timezone.now(),
                                               last_reconcile_repaired=repaired, updated_at=timezone.now())
    if repaired:
        log.info("reconciliation repaired %d rows for shop %s", repaired, shop.domain)
    return repaired


def shops_to_reconcile(*, limit: int = 10_000) -> list[int]:
    """Installed shops whose history is in, so there is a watermark to reconcile from."""
    return list(Shop.objects.filter(status=ShopStatus.INSTALLED, sync__backfill_status=BackfillStatus.DONE)
                .values_list("pk", flat=True)[:limit])
