"""Order deliveries applied to the mirror by one worker process on PostgreSQL: deliveries/s vs 300/s.

    .venv/bin/python bench/webhook_apply_bench.py [--orders 5000]

Seeds a temporary devstore and builds realistic `orders/create` payloads from its orders with
devstore's own payload builder (Shopify's 2026-07 shape: line items, refunds, client details,
shipping lines, nested customer). Into a dedicated database (`shopseg_bench_apply`, created and
migrated if missing) it records one pending WebhookEvent per payload, then times
`webhook_event_process` over them in this process: the production path (lock the event, parse,
look up product types, upsert customer stubs, order, line items and refunds, close the checkout,
mark customers dirty, record the outcome), one transaction per delivery. A second pass
re-delivers the same payloads as new events (Shopify's at-least-once duplicates). A third applies
them to a fresh shop through `webhook_events_drain`, the path the worker's drain task takes (locked
batches of DRAIN_BATCH, one commit per batch, a shop's consecutive orders upserted as one run), and
a fourth the same with --compare-batch deliveries per transaction. The baseline, measured in the same run on the same payloads,
is the obvious ORM code: `update_or_create` per customer, order and line item.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "shopseg_bench_apply"
TARGET_PER_SECOND = 300
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def database_ready() -> str:
    """Create the benchmark database if needed and migrate it; returns its URL."""
    url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    exists = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
                             f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not exists:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {DB}"],
                       check=True, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                   env={**os.environ, "DATABASE_URL": url})
    return url


def order_payloads(count: int, customers: int) -> tuple[list[dict], list[dict]]:
    """(orders/create payloads, products/update payloads) from a freshly seeded devstore."""
    from devstore import payload_context, payload_orders, payloads
    from devstore.generator import seed_shop
    from devstore.state import DevStore

    with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
        store = DevStore(Path(tmp) / "devstore.db")
        store.shop_create("bench-source.myshopify.com")
        seed_shop(store, "bench-source.myshopify.com", customers=customers, seed=3, now=NOW)
        ctx = payload_context.shop_context(store, "bench-source.myshopify.com")
        ids = [r[0] for r in store.conn().execute(
            "SELECT id FROM orders WHERE shop = ? AND test = 0 ORDER BY id LIMIT ?", (ctx.domain, count))]
        if len(ids) < count:
            raise SystemExit(f"only {len(ids)} orders from {customers} customers; raise --customers")
        orders = [payload_orders.order(store, ctx, order_id) for order_id in ids]
        products = [payloads.product(store, ctx, r[0]) for r in store.conn().execute(
            "SELECT id FROM products WHERE shop = ?", (ctx.domain,))]
        store.close()
    return orders, products


def record_events(domain: str, topic: str, bodies: list[dict]) -> list[int]:
    from webhooks.models import WebhookEvent

    events = WebhookEvent.objects.bulk_create([
        WebhookEvent(webhook_id=str(uuid.uuid4()), shop_domain=domain, topic=topic, payload=body)
        for body in bodies], batch_size=500)
    return [event.pk for event in events]


def apply_through_webhooks(domain: str, bodies: list[dict]) -> float:
    """Seconds for webhook_event_process over freshly recorded events (recording is not timed)."""
    from webhooks.services import webhook_event_process

    pks = record_events(domain, "orders/create", bodies)
    started = time.perf_counter()
    outcomes = [webhook_event_process(event_pk=pk) for pk in pks]
    seconds = time.perf_counter() - started
    if set(outcomes) != {"processed"}:
        raise SystemExit(f"unexpected outcomes: {sorted(set(outcomes))}")
    return seconds


def apply_through_drain(domain: str, bodies: list[dict], batch: int) -> float:
    """Seconds for the worker's drain over freshly recorded events, `batch` per transaction."""
    from webhooks.models import EventStatus, WebhookEvent
    from webhooks.services import webhook_events_drain

    record_events(domain, "orders/create", bodies)
    started = time.perf_counter()
    done = webhook_events_drain(batch=batch, budget=dt.timedelta(hours=1))
    seconds = time.perf_counter() - started
    processed = WebhookEvent.objects.filter(shop_domain=domain, status=EventStatus.PROCESSED).count()
    if (done, processed) != (len(bodies), len(bodies)):
        raise SystemExit(f"drain processed {done} ({processed} marked) of {len(bodies)}")
    return seconds


def apply_naively(shop, bodies: list[dict]) -> float:
    """The obvious ORM code, one update_or_create per row (parsing shared with the real path)."""
    from django.db import transaction

    from segments.mirror import rest
    from segments.mirror.models import Customer, LineItem, Order

    started = time.perf_counter()
    for body in bodies:
        record = rest.order_record(body)
        with transaction.atomic():
            customer = None
            if record.customer_shopify_id:
                customer, _ = Customer.objects.get_or_create(shop=shop, shopify_id=record.customer_shopify_id)
            order, _ = Order.objects.update_or_create(shop=shop, shopify_id=record.shopify_id, defaults={
                "customer": customer, "email": record.email, "name": record.name, "created_at": record.created_at,
                "processed_at": record.processed_at, "updated_at": record.updated_at,
                "cancelled_at": record.cancelled_at, "financial_status": record.financial_status,
                "currency": record.currency, "subtotal": record.subtotal, "total": record.total,
                "total_discounts": record.total_discounts, "total_shipping": record.total_shipping,
                "total_refunded": record.total_refunded, "discount_codes": record.discount_codes,
                "source_name": record.source_name, "device": record.device,
                "shipping_method": record.shipping_method, "shipping_speed": record.shipping_speed,
                "cart_token": record.cart_token, "checkout_token": record.checkout_token})
            for item in record.line_items:
                LineItem.objects.update_or_create(order=order, shopify_id=item.shopify_id, defaults={
                    "shop": shop, "product_id": item.product_id, "variant_id": item.variant_id,
                    "title": item.title, "vendor": item.vendor, "quantity": item.quantity, "price": item.price,
                    "total_discount": item.total_discount})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=3000, help="customers seeded to draw orders from")
    parser.add_argument("--compare-batch", type=int, default=25,
                        help="the drain again with this many deliveries per transaction (the default before 100)")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = database_ready()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopseg.settings")
    import django

    django.setup()
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    from segments.mirror import rest
    from segments.mirror.models import LineItem, Order
    from segments.mirror.orders import products_upsert
    from segments.shops.models import Shop
    from webhooks.models import WebhookEvent
    from webhooks.services import DRAIN_BATCH

    orders, products = order_payloads(args.orders, args.customers)
    lines = sum(len(o["line_items"]) for o in orders)
    refunds = sum(len(o["refunds"]) for o in orders)
    run = uuid.uuid4().hex[:8]
    WebhookEvent.objects.all().delete()  # the database is the benchmark's own: start from an empty outbox
    shop = Shop.objects.create(domain=f"apply-{run}.myshopify.com")
    drain_shop = Shop.objects.create(domain=f"apply-drain-{run}.myshopify.com")
    compare_shop = Shop.objects.create(domain=f"apply-drain-{args.compare_batch}-{run}.myshopify.com")
    baseline_shop = Shop.objects.create(domain=f"apply-naive-{run}.myshopify.com")
    for target in (shop, drain_shop, compare_shop):
        products_upsert(shop=target, records=[rest.product_record(p) for p in products])
    try:
        first = apply_through_webhooks(shop.domain, orders)
        again = apply_through_webhooks(shop.domain, orders)
        drained = apply_through_drain(drain_shop.domain, orders, DRAIN_BATCH)
        compared = apply_through_drain(compare_shop.domain, orders, args.compare_batch)
        naive = apply_naively(baseline_shop, orders)
        for target in (shop, drain_shop, compare_shop):
            assert Order.objects.filter(shop=target).count() == len(orders)
            assert LineItem.objects.filter(shop=target).count() == lines
    finally:
        Shop.objects.filter(pk__in=[shop.pk, drain_shop.pk, compare_shop.pk, baseline_shop.pk]).delete()
        WebhookEvent.objects.all().delete()

    rate, dup_rate, naive_rate = len(orders) / first, len(orders) / again, len(orders) / naive
    drain_rate = len(orders) / drained
    print(f"payloads           {len(orders):,} orders/create from devstore's builder "
          f"({lines:,} line items, {refunds:,} refunds; {args.customers:,}-customer seed)")
    print(f"webhook_event_process, new orders   {first:6.2f} s  {rate:7,.0f} deliveries/s  "
          f"ratio to target {TARGET_PER_SECOND}/s: {rate / TARGET_PER_SECOND:.2f}")
    print(f"webhook_event_process, duplicates   {again:6.2f} s  {dup_rate:7,.0f} deliveries/s  "
          f"ratio to target: {dup_rate / TARGET_PER_SECOND:.2f}")
    print(f"webhook_events_drain, new orders    {drained:6.2f} s  {drain_rate:7,.0f} deliveries/s  "
          f"ratio to target: {drain_rate / TARGET_PER_SECOND:.2f} ({DRAIN_BATCH} a transaction)")
    print(f"  the same, {args.compare_batch} a transaction   {compared:6.2f} s  {len(orders) / compared:7,.0f} "
          f"deliveries/s  ({drained / compared:.2f}x the time)")
    print(f"baseline: ORM update_or_create     {naive:6.2f} s  {naive_rate:7,.0f} orders/s  "
          f"(webhook path {rate / naive_rate:.2f}x the baseline)")


if __name__ == "__main__":
    main()
