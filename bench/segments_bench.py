"""Segment engine benchmark: full recompute with every template active, incremental recompute of
one customer after a new order, and the dry-run preview of an edit (PostgreSQL).

    .venv/bin/python bench/segments_bench.py [--customers 1000000] [--dry-run-customers 100000] [--reuse]

The mirror is bench/metrics_bench.py's generated one (database `shopseg_bench_metrics`, reused when
it holds a shop of the asked size; `--reuse` as there), plus a second shop of --dry-run-customers
for the preview. Every template becomes an active segment (category loyalists on "Coffee"; the
VIP ladder's tiers as an exclusive group; high-value repeat with a 10% holdout).

In one process it times:
- the floor: one plain aggregate over the orders (as metrics_bench);
- the metrics rebuild (nightly), then `segments_recompute` for every segment twice: **first**
  (every member enters: memberships, history and tag changes written for all of them) and
  **nightly** (a day later: the evaluation is all there is to do, plus the few who moved);
- incremental: `--samples` times, a new order for a random buyer through the mirror writer, then
  `dirty_customers_refresh` (metrics refresh + membership of that customer, marks cleared);
- dry-run: `segment_dry_run` of an edited template against its segment on the smaller shop.
It prints seconds, ratios to the floor and to the targets, and peak RSS.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import metrics_bench as mb  # noqa: E402
from bench.stack import percentile  # noqa: E402

FULL_TARGET = 120.0
INCREMENTAL_P95_TARGET_MS = 50.0
DRY_RUN_TARGET = 2.0
FLOOR_RATIO_AIM = 3.0
DRY_RUN_DOMAIN = "bench-dry-run.myshopify.com"
BENCH_ORDER_IDS = 10**12     # orders the incremental samples add have Shopify ids above this


def ensure_shop(domain: str, customers: int, orders: int):
    from django.db import connection

    from segments.mirror.models import Order
    from segments.shops.models import Shop

    shop = Shop.objects.filter(domain=domain).first()
    if shop is not None:
        # Orders an earlier run's incremental samples added (ids from BENCH_ORDER_IDS) go first.
        Order.objects.filter(shop=shop, shopify_id__gt=BENCH_ORDER_IDS).delete()
        sizes = mb.counts(shop)
        if sizes["customer"] == customers and sizes["order"] == orders:
            print(f"reusing {domain}", flush=True)
            return shop
        shop.delete()
    shop = Shop.objects.create(domain=domain, checkout_abandon_minutes=60)
    print(f"generating {customers:,} customers and {orders:,} orders for {domain}", flush=True)
    mb.timed("generate", lambda: mb.generate(shop, customers, orders))
    connection.close()
    mb.timed("vacuum analyze", lambda: mb.psql_db("VACUUM ANALYZE"))
    return Shop.objects.get(pk=shop.pk)


def template_segments(shop) -> list:
    """Every template as an active segment of the shop (replacing earlier runs' segments)."""
    from segments.engine.rules import describe, parse
    from segments.engine.templates import TEMPLATES, template_document
    from segments.membership.models import ExclusiveGroup, Segment, SegmentVersion

    Segment.objects.filter(shop=shop).delete()
    ExclusiveGroup.objects.filter(shop=shop).delete()
    segments = []
    for template in TEMPLATES:
        overrides = {"product_type": "Coffee"} if template.key == "category_loyalists" else {}
        document = parse(template_document(template.key, **overrides))
        segment = Segment.objects.create(shop=shop, name=template.name, handle=template.tag_handle,
                                         template=template.key,
                                         holdout_percent=10 if template.key == "high_value_repeat" else 0)
        SegmentVersion.objects.create(segment=segment, number=1, rules=document.to_document(),
                                      summary=describe(document))
        segments.append(segment)
    # A spend ladder as an exclusive group: VIP over high-value repeat over returning customers.
    ladder = ExclusiveGroup.objects.create(shop=shop, name="Spend ladder", hysteresis_days=14)
    for priority, key in enumerate(("returning_customers", "high_value_repeat", "vip")):
        Segment.objects.filter(shop=shop, template=key).update(group=ladder, priority=priority)
    return segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=5.0)
    parser.add_argument("--dry-run-customers", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200, help="incremental recomputes to time")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it exists")
    args = parser.parse_args()
    orders = int(args.customers * args.orders_per_customer)

    os.environ.update({"DATABASE_URL": mb.URL, "DJANGO_SETTINGS_MODULE": "shopseg.settings"})
    if not (args.reuse and mb.database_exists()):
        mb.fresh_database()
    else:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                       env={**os.environ})
    import django

    django.setup()
    from django.db import connection

    from segments.engine.templates import template_document
    from segments.membership.definitions import segment_dry_run
    from segments.membership.models import Membership, MembershipEvent, Segment, TagChange
    from segments.membership.recompute import segments_recompute
    from segments.metrics.models import CustomerMetrics
    from segments.metrics.refresh import customer_metrics_rebuild, dirty_customers_refresh
    from segments.mirror.models import Customer
    from segments.mirror.records import LineItemRecord, OrderRecord
    from segments.mirror.orders import orders_upsert

    shop = ensure_shop(mb.DOMAIN, args.customers, orders)
    small = ensure_shop(DRY_RUN_DOMAIN, args.dry_run_customers, int(args.dry_run_customers * args.orders_per_customer))
    sizes = mb.counts(shop)
    print("mirror: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    segments = template_segments(shop)
    print(f"{len(segments)} segments from templates", flush=True)
    print("timing", flush=True)
    mb.timed("floor (warm-up)", lambda: mb.floor_pass(shop))
    floor, _ = mb.timed("floor", lambda: mb.floor_pass(shop))
    rebuild, _ = mb.timed("metrics rebuild (nightly)", lambda: customer_metrics_rebuild(shop=shop, now=mb.NOW))
    Customer.objects.filter(shop=shop).update(dirty_at=None, dirty_cause="")
    first, outcome = mb.timed("segments, first full recompute",
                              lambda: segments_recompute(shop=shop, trigger="nightly", now=mb.NOW))
    members = Membership.objects.filter(shop=shop).count()
    later = mb.NOW + dt.timedelta(days=1)
    customer_metrics_rebuild(shop=shop, now=later)
    nightly, again = mb.timed("segments, nightly full recompute",
                              lambda: segments_recompute(shop=shop, trigger="nightly", now=later))
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend_peak = mb.peak_rss_mb(backend)

    # Incremental: a new order for a random buyer, then the dirty path for that customer.
    rng = random.Random(7)
    buyers = list(CustomerMetrics.objects.filter(shop=shop, orders_count__gt=0)
                  .values_list("customer_id", flat=True)[:200_000])
    sids = dict(Customer.objects.filter(pk__in=rng.sample(buyers, min(args.samples, len(buyers))))
                .values_list("pk", "shopify_id"))
    incremental_ms = []
    at = later + dt.timedelta(hours=1)
    next_order = BENCH_ORDER_IDS
    for pk, sid in sids.items():
        next_order += 1
        orders_upsert(shop=shop, records=[OrderRecord(
            shopify_id=next_order, created_at=at, updated_at=at, customer_shopify_id=sid,
            total=Decimal("180.00"), subtotal=Decimal("180.00"), device="mobile", source_name="web",
            line_items=[LineItemRecord(shopify_id=next_order, quantity=1, price=Decimal("180.00"),
                                       product_type="Coffee")])])
        started = time.perf_counter()
        dirty_customers_refresh(shop=shop, limit=1, now=at)
        incremental_ms.append((time.perf_counter() - started) * 1000)

    # Dry-run on the smaller shop: an edit of high-value repeat against its current members.
    customer_metrics_rebuild(shop=small, now=mb.NOW)
    template_segments(small)
    segments_recompute(shop=small, now=mb.NOW)
    target = Segment.objects.get(shop=small, template="high_value_repeat")
    edited = template_document("high_value_repeat", min_orders=5)        # the merchant raises the bar
    segment_dry_run(shop=small, rules=edited, segment=target, now=mb.NOW)     # warm-up
    dry_runs = []
    for _ in range(5):
        started = time.perf_counter()
        preview = segment_dry_run(shop=small, rules=edited, segment=target, now=mb.NOW)
        dry_runs.append(time.perf_counter() - started)

    print()
    print(f"customers {sizes['customer']:,} (buyers {sizes['buyers']:,}), orders {sizes['order']:,}, "
          f"line items {sizes['lineitem']:,}, checkouts {sizes['checkout']:,}; {len(segments)} segments")
    print(f"floor (one aggregate over orders): {floor:.2f} s; metrics rebuild {rebuild:.2f} s")
    print(f"full recompute, first:   {first:.2f} s ({outcome.entered:,} entries; {members:,} memberships, "
          f"{MembershipEvent.objects.filter(shop=shop).count():,} history rows, "
          f"{TagChange.objects.filter(shop=shop).count():,} tag changes so far), {first / floor:.1f}x floor")
    print(f"full recompute, nightly: {nightly:.2f} s ({again.entered:,} entries, {again.exited:,} exits), "
          f"{nightly / floor:.1f}x floor")
    total = rebuild + nightly
    print(f"nightly total (metrics rebuild + recompute): {total:.2f} s, {total / floor:.1f}x floor "
          f"(aim {FLOOR_RATIO_AIM:.0f}x), {total / FULL_TARGET:.2f} of the {FULL_TARGET:.0f} s target; "
          f"first-time total {rebuild + first:.2f} s, {(rebuild + first) / FULL_TARGET:.2f} of the target")
    print(f"incremental one customer after a new order: p50 {statistics.median(incremental_ms):.1f} ms, "
          f"p95 {percentile(incremental_ms, 0.95):.1f} ms, max {max(incremental_ms):.1f} ms over "
          f"{len(incremental_ms)} (target p95 <= {INCREMENTAL_P95_TARGET_MS:.0f} ms)")
    print(f"dry-run on {args.dry_run_customers:,} customers: median {statistics.median(dry_runs):.2f} s, "
          f"max {max(dry_runs):.2f} s (size {preview['size']:,}, +{preview['entries']:,} / -{preview['exits']:,}); "
          f"{max(dry_runs) / DRY_RUN_TARGET:.2f} of the {DRY_RUN_TARGET:.0f} s target")
    print(f"peak RSS through the full recomputes: this process {own_peak:.0f} MB, "
          f"PostgreSQL backend {backend_peak:.0f} MB (its parallel workers not included)")


if __name__ == "__main__":
    main()
