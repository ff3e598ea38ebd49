"""Reconciliation: re-read what Shopify changed since the watermark and repair what webhooks missed.

Webhook delivery is at-least-once but not guaranteed (a subscription can be removed, a delivery
can run out of retries), so Shopify recommends this periodic pass. It pages through
`updated_at:>` queries within the shop's shared cost budget (segments.shops.graphql: the
bucket tag sync and the rest spend too) and writes only rows the mirror lacks or holds in an older
version, so `last_reconcile_repaired` counts real repairs.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.utils import timezone

from segments.mirror.cause import RECONCILE, dirty_cause
from segments.mirror.costs import costs_upsert
from segments.mirror.graphql import (
    CUSTOMER_FIELDS, INVENTORY_ITEM_FIELDS, LINE_ITEM_FIELDS, PRODUCT_FIELDS, checkout_fields, checkout_record,
    customer_record, edge_nodes, gid_number, inventory_item_record, order_fields, order_record, product_record,
)
from segments.mirror.models import BackfillStatus, Checkout, Customer, Order, Product, ShopSync, VariantCost
from segments.mirror.orders import checkouts_upsert, orders_delete, orders_upsert, products_upsert
from segments.mirror.writer import customers_upsert
from segments.shops.graphql import ShopSender, with_shop_sender
from segments.shops.models import Shop, ShopStatus

log = logging.getLogger(__name__)
# Shopify's and our clocks disagree a little, and a change can commit after its updated_at: re-read a margin.
OVERLAP = dt.timedelta(minutes=5)
# How long one call may spend waiting out 5xx answers before it gives up and the task retries later.
MAX_TRANSIENT_WAIT = 120.0


def _stale_keys(*, model: type[models.Model], shop: Shop, key: str, stamps: dict) -> set:
    """Keys whose row is missing, a stub (no updated_at) or older than `stamps[key]`."""
    held = dict(model.objects.filter(shop=shop, **{f"{key}__in": list(stamps)}).values_list(key, "updated_at"))
    return {k for k, stamp in stamps.items()
            if k not in held or held[k] is None or (stamp is not None and held[k] < stamp)}


# -- resources -----------------------------------------------------------------------------------
def _customers(shop: Shop, nodes: list[dict], sender: ShopSender) -> int:
    records = [customer_record(n) for n in nodes]
    stale = _stale_keys(model=Customer, shop=shop, key="shopify_id",
                        stamps={r.shopify_id: r.updated_at for r in records})
    return len(customers_upsert(shop=shop, records=[r for r in records if r.shopify_id in stale]))


def _products(shop: Shop, nodes: list[dict], sender: ShopSender) -> int:
    records = [product_record(n) for n in nodes]
    stale = _stale_keys(model=Product, shop=shop, key="shopify_id",
                        stamps={r.shopify_id: r.updated_at for r in records})
    return products_upsert(shop=shop, records=[r for r in records if r.shopify_id in stale])


ORDER_LINE_ITEMS = f"""query OrderLineItems($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: 50, after: $after) {{
    edges {{ node {{ {LINE_ITEM_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}
}}"""


def _all_line_items(sender: ShopSender, node: dict) -> list[dict]:
    """The order's line items, fetching the pages beyond the first nested one."""
    connection = node.get("lineItems") or {}
    items = edge_nodes(connection)
    while (connection.get("pageInfo") or {}).get("hasNextPage"):
        result = sender.call(ORDER_LINE_ITEMS, {"id": node["id"], "after": connection["pageInfo"]["endCursor"]})
        connection = ((result.data.get("order") or {}).get("lineItems")) or {}
        items += edge_nodes(connection)
    return items


def _orders(shop: Shop, nodes: list[dict], sender: ShopSender) -> int:
    """Orders newer than the mirror's, and the removal of any that turned out to be test orders."""
    real = [n for n in nodes if not n.get("test")]
    turned_test = orders_delete(shop=shop, shopify_ids=[gid_number(n["id"]) for n in nodes if n.get("test")])
    stamps = {gid_number(n["id"]): dt.datetime.fromisoformat(n["updatedAt"]) for n in real}
    stale = _stale_keys(model=Order, shop=shop, key="shopify_id", stamps=stamps)
    # Line items beyond the nested page are fetched only for the orders that need writing.
    records = [order_record(n, line_items=_all_line_items(sender, n)) for n in real if gid_number(n["id"]) in stale]
    return turned_test + len(orders_upsert(shop=shop, records=records))


def _checkouts(shop: Shop, nodes: list[dict], sender: ShopSender) -> int:
    records = [checkout_record(n) for n in nodes]
    stale = _stale_keys(model=Checkout, shop=shop, key="token", stamps={r.token: r.updated_at for r in records})
    return checkouts_upsert(shop=shop, records=[r for r in records if r.token in stale])


def _inventory_items(shop: Shop, nodes: list[dict], sender: ShopSender) -> int:
    """Variants' unit costs; the writer's guard counts only the items whose cost or variant it lacked."""
    return costs_upsert(shop=shop, records=[inventory_item_record(n) for n in nodes], current=True)


@dataclass(frozen=True)
class Resource:
    root: str
    fields: str
    page: int                                   # first: sized to stay well under the 1,000-point query cap
    apply: Callable[[Shop, list[dict], ShopSender], int]   # writes a page, returns how many rows it repaired

    @property
    def query(self) -> str:
        return (f"query Changed($query: String!, $after: String) {{ {self.root}(first: {self.page}, "
                f"query: $query, after: $after) {{ edges {{ node {{ {self.fields} }} }} "
                f"pageInfo {{ hasNextPage endCursor }} }} }}")


# Customers first, so orders and checkouts link to full rows rather than stubs. Page sizes keep the
# requested cost near 750 of the 1,000-point cap (a customer costs ~4 points, a product 1, an order with
# ten nested line items ~94, a checkout with 25 counted lines ~31, an inventory item with its cost and
# its variant 5); Shopify refunds what is not used.
RESOURCES = (
    Resource("customers", CUSTOMER_FIELDS, 200, _customers),
    Resource("products", PRODUCT_FIELDS, 250, _products),
    Resource("orders", order_fields(page=10), 8, _orders),
    Resource("abandonedCheckouts", checkout_fields(page=25), 24, _checkouts),
    Resource("inventoryItems", INVENTORY_ITEM_FIELDS, 150, _inventory_items),
)


def _reconcile_resource(*, shop: Shop, sender: ShopSender, resource: Resource, search: str) -> int:
    repaired, after = 0, None
    while True:
        # Paced by the shop's shared budget: tag sync and the rest spend the same bucket meanwhile.
        result = sender.call(resource.query, {"query": search, "after": after})
        connection = result.data[resource.root]
        repaired += resource.apply(shop, edge_nodes(connection), sender)
        if not connection["pageInfo"]["hasNextPage"]:
            return repaired
        after = connection["pageInfo"]["endCursor"]


def changed_since(since: dt.datetime) -> str:
    """The search for rows updated at or after `since`.

    Shopify's search syntax wants date values as quoted strings (shopify.dev/docs/api/usage/
    search-syntax); quoted, a date-time compares to the second, while an unquoted one has been seen
    to compare by its date alone (Shopify developer support). Quoted, and inclusive (`>=`): should
    Shopify ever compare by whole days, `>= day` still includes the whole day, where `> day` would
    skip the rest of it. Rows read twice cost nothing: the writer's guard skips what is current.
    """
    return f"updated_at:>='{since.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}'"


def shop_reconcile(*, shop_id: int) -> int:
    """Repair the mirror from Shopify's changes since the watermark; returns the rows repaired.

    The watermark moves to this run's start only when every resource was read, so a failed run
    is simply repeated (writes are idempotent).
    """
    shop = Shop.objects.get(pk=shop_id)
    sync = ShopSync.objects.get(shop=shop)
    started = timezone.now()
    since = (sync.reconciled_until or sync.backfill_started_at or started) - OVERLAP
    search = changed_since(since)
    # A shop backfilled before costs were kept has none: its next run reads every inventory item once.
    no_costs = not VariantCost.objects.filter(shop=shop).exists()
    with dirty_cause(RECONCILE):
        repaired = with_shop_sender(shop_id=shop_id, max_transient_wait=MAX_TRANSIENT_WAIT, call=lambda sender: sum(
            _reconcile_resource(shop=shop, sender=sender, resource=r,
                                search="" if no_costs and r.root == "inventoryItems" else search)
            for r in RESOURCES))
    ShopSync.objects.filter(pk=sync.pk).update(reconciled_until=started, last_reconcile_at=timezone.now(),
                                               last_reconcile_repaired=repaired, updated_at=timezone.now())
    if repaired:
        log.info("reconciliation repaired %d rows for shop %s", repaired, shop.domain)
    return repaired


def shops_to_reconcile(*, limit: int = 10_000) -> list[int]:
    """Installed shops whose history is in, so there is a watermark to reconcile from."""
    return list(Shop.objects.filter(status=ShopStatus.INSTALLED, sync__backfill_status=BackfillStatus.DONE)
                .values_list("pk", flat=True)[:limit])
