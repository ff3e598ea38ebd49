"""Tag sync benchmark against devstore (PostgreSQL, Redis): API cost and time of large syncs, where
the bulk path pays, and the latency from an order to its tag.

    .venv/bin/python bench/tag_sync_bench.py throughput --customers 5000 [--restore-multiplier 1]
    .venv/bin/python bench/tag_sync_bench.py crossover --sizes 100,300,1000,3000,10000 [--direct-up-to 1000]
    .venv/bin/python bench/tag_sync_bench.py latency --rate 20 --seconds 30 [--dirty-refresh 1] [--burst 50000]

throughput / crossover: devstore runs as its own process (`manage.py devstore`, standard plan:
restore 100 points/s, bucket 2,000; `--restore-multiplier` scales both). The app is installed
through the real OAuth flow into a dedicated database (`shopseg_bench_tags`, created and migrated).
N customers are written to devstore's state file and to the mirror (not timed), a segment that
selects exactly them is computed by the membership service (N outbox rows), and this process runs
`shop_tags_sync` as a worker would until the outbox is empty. Deliveries of the webhooks our writes
cause are dropped by devstore (a fault), so devstore's time goes to the API alone.
- cost: points Shopify charged (sum of actualQueryCost) against the minimum, 10 per customer;
- time: wall time against the bucket-limited minimum, (10 N - bucket size) / restore rate, since
  the bucket starts full;
- crossover: for each size, the same diff through the bulk path (staged upload, bulk mutation,
  poll every 0.5 s, results applied), against the direct path (measured up to --direct-up-to,
  beyond that its bucket-limited minimum, which the direct path cannot beat).

latency: devstore runs in this process (it places the orders and sees the tags arrive); the app
runs as production would: gunicorn (2 workers x 4 threads), a Celery worker (prefork, 2) and beat
on Redis, database `shopseg_bench_tags_latency`. The shop is seeded with a history that ends ten
days ago and backfilled through the install; one segment, "ordered in the last 7 days", has no
members. --regulars customers order first (they become members; their later orders change no tag),
then orders are placed at --rate for --seconds, --new-share of them by customers not yet in the
segment, whose order makes them enter, so tag sync must add `seg:recent` in devstore. At 20
orders/s and 0.4 that is 8 tag writes/s, 80 points/s, within the standard bucket's 100/s (every
order a new member would need 200 points/s, which no client can sustain on that plan). Latency is
from `order_create` returning to devstore committing the tag (its `customer.tags_added` event),
over the orders that entered: webhook -> mirror -> dirty mark -> metrics + membership (beat,
SHOPSEG_DIRTY_REFRESH_SECONDS) -> outbox -> tag sync (beat, SHOPSEG_TAG_SYNC_SECONDS) -> tagsAdd.

--burst N: after that quiet phase, another installed shop gets N orders/create deliveries (2,000
customers, the sample order), recorded in one go as the endpoint records them and then scheduled
as a delivery schedules its drain, and the same traffic runs again while they are being applied.
It prints the burst shop's deliveries still pending when the phase ends (the backlog was there
throughout) and the ratio of the two phases' p95 (the target: at most 2). The burst is written
straight to the table rather than over HTTP so that the figure measures queueing, not two cores
shared with the endpoint (BENCHMARKS.md, "Webhook endpoint", has the endpoint's own figures).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stack import REDIS, fresh_database, percentile  # noqa: E402
from bench.tag_sync_rig import (  # noqa: E402
    APP_KEY, APP_SECRET, FIRST_ID, MUTATION, SHOP, STANDARD_BUCKET, STANDARD_RESTORE, Rig, run_bulk, run_direct,
)



# -- throughput and crossover -------------------------------------------------------------------------
def setup_django(db: str) -> None:
    os.environ.update({"DATABASE_URL": fresh_database(db), "DJANGO_SETTINGS_MODULE": "shopseg.settings",
                       "REDIS_URL": "", "SHOPSEG_LOG_LEVEL": "WARNING", "SHOPIFY_API_KEY": APP_KEY,
                       "SHOPIFY_API_SECRET": APP_SECRET})
    import django

    django.setup()


def throughput(args) -> None:
    setup_django("shopseg_bench_tags")
    import redis
    from django.conf import settings

    from segments.membership.models import TagChange
    from segments.shops.throttle import ShopThrottle
    from segments.tags.models import TagAudit

    settings.REDIS_URL = REDIS          # the throttle shared through Redis, as in production
    redis.Redis.from_url(REDIS).flushdb()
    rig = Rig(args.restore_multiplier)
    try:
        shop = rig.install()
        ShopThrottle(shop.pk).reset()
        n = args.customers
        print(f"devstore standard plan x{args.restore_multiplier:g}: restore {rig.restore:g} points/s, "
              f"bucket {rig.bucket:g}; {n:,} changed customers", flush=True)
        t = time.perf_counter()
        rig.customers(shop, n, "bench-a")
        rig.segment(shop, "bench-a", "bench-a")
        print(f"setup {time.perf_counter() - t:.1f} s; outbox rows "
              f"{TagChange.objects.filter(shop=shop).count():,}", flush=True)
        result = run_direct(shop)
        minimum_points = MUTATION * n
        minimum_seconds = max(0.0, minimum_points - rig.bucket) / rig.restore
        applied = TagAudit.objects.filter(shop=shop, result="applied").count()
        print(json.dumps({**result, "customers": n, "applied": applied}), flush=True)
        print(f"cost: {result['points']:,.0f} points for {n:,} customers = {result['points'] / n:.2f} per "
              f"customer; minimum {MUTATION}; ratio {result['points'] / minimum_points:.3f}")
        print(f"time: {result['seconds']:.1f} s; bucket-limited minimum {minimum_seconds:.1f} s; ratio "
              f"{result['seconds'] / minimum_seconds:.3f}" if minimum_seconds else f"time {result['seconds']:.1f}")
        print(f"requests {result['requests']:,} ({n / max(1, result['requests']):.1f} customers each), "
              f"THROTTLED answers {result['throttled']}, transient errors {result['transient']}")
        sample = random.sample(range(FIRST_ID, FIRST_ID + n), min(20, n))
        with httpx.Client() as http:
            missing = [sid for sid in sample if "bench-a" not in http.get(
                f"{rig.url}/_control/shops/{SHOP}/customers/{sid}/tags").json()["tags"]]
        print(f"spot check: {len(sample) - len(missing)}/{len(sample)} sampled customers carry seg:bench-a "
              f"beside their own tag")
    finally:
        rig.close()


def crossover(args) -> None:
    setup_django("shopseg_bench_tags")
    from django.conf import settings

    from segments.shops.throttle import ShopThrottle

    sizes = [int(s) for s in args.sizes.split(",")]
    rig = Rig(1.0)
    rows = []
    try:
        shop = rig.install()
        for n in sizes:
            minimum = max(0.0, MUTATION * n - rig.bucket) / rig.restore
            direct = None
            if n <= args.direct_up_to:
                ShopThrottle(shop.pk).reset()
                rig.wait_bucket_full()
                settings.SHOPSEG_TAG_BULK_THRESHOLD = 0
                rig.customers(shop, n, f"d{n}")
                rig.segment(shop, f"d{n}", f"d{n}")
                direct = run_direct(shop)["seconds"]
            settings.SHOPSEG_TAG_BULK_THRESHOLD = 1
            rig.customers(shop, n, f"b{n}")
            rig.segment(shop, f"b{n}", f"b{n}")
            bulk = run_bulk(shop)
            rows.append((n, direct, minimum, bulk["seconds"], bulk["points"]))
            print(f"{n:>7,} customers: direct {'%.1f s' % direct if direct is not None else '-':>9} "
                  f"(bucket minimum {minimum:.1f} s) | bulk {bulk['seconds']:.1f} s "
                  f"({bulk['points']:.0f} points)", flush=True)
    finally:
        rig.close()
    print(json.dumps(rows))


# -- latency -------------------------------------------------------------------------------------------
def latency(args) -> None:
    from bench.stack import Stack

    env = {"SHOPSEG_DIRTY_REFRESH_SECONDS": str(args.dirty_refresh), "SHOPSEG_TAG_SYNC_SECONDS": str(args.tag_sync)}
    with Stack(db="shopseg_bench_tags_latency", shop=SHOP, customers=args.customers, env=env) as stack:
        _latency(args, stack)


def _latency(args, stack) -> None:
    from devstore import mutations
    from segments.membership.definitions import segment_create
    from segments.membership.models import TagChange
    from webhooks.models import EventStatus, WebhookEvent

    store, shop = stack.store, stack.shop
    segment = segment_create(shop=shop, name="Recent", handle="recent", rules={
        "version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1,
                                  "window": {"last_days": 7}}})
    time.sleep(5)
    segment.refresh_from_db()
    print(f"segment {segment.handle}: {segment.member_count} members before the traffic", flush=True)

    customers = [r[0] for r in store.conn().execute("SELECT id FROM customers WHERE shop = ?", (SHOP,))]
    variant = store.conn().execute("SELECT id FROM variants WHERE shop = ? LIMIT 1", (SHOP,)).fetchone()[0]
    rng = random.Random(1)
    rng.shuffle(customers)
    placed: dict[int, float] = {}
    tagged: dict[int, float] = {}
    lock = threading.Lock()

    def listener(event) -> None:
        if event.shop == SHOP and event.topic == "customer.tags_added" and "seg:recent" in (
                (event.extra or {}).get("tags") or []):
            with lock:
                tagged.setdefault(event.id, time.monotonic())

    def order(customer: int) -> None:
        mutations.order_create(store, SHOP, line_items=[{"variant_id": variant, "quantity": 1}],
                               customer_id=customer)

    store.subscribe(listener)
    # Regulars: customers who already ordered this week (members); their orders change no tag.
    regulars, fresh = customers[:args.regulars], customers[args.regulars:]
    if regulars:
        for customer in regulars:
            order(customer)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(tagged) < len(regulars):
            time.sleep(0.5)
        print(f"warm-up: {len(tagged)}/{len(regulars)} regulars tagged; letting the bucket refill", flush=True)
        time.sleep(STANDARD_BUCKET / STANDARD_RESTORE + 2)
    def phase(label: str) -> list[float]:
        """Orders at --rate for --seconds; the latencies of those whose customer enters."""
        placed.clear()
        count = int(args.rate * args.seconds)
        interval = 1.0 / args.rate
        start = time.monotonic()
        for n in range(count):
            due = start + n * interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if not regulars or rng.random() < args.new_share:
                customer = fresh.pop()
                order(customer)
                with lock:
                    placed[customer] = time.monotonic()
            else:
                order(rng.choice(regulars))
        sent = time.monotonic() - start
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(tagged.keys() & placed.keys()) < len(placed):
            time.sleep(0.2)
        arrived = [tagged[c] - placed[c] for c in placed if c in tagged]
        missing = len(placed) - len(arrived)
        print(f"{label}: orders placed: {count} in {sent:.1f} s ({count / sent:.1f}/s), {len(placed)} by "
              f"customers entering the segment; tagged: {len(arrived)}; missing after 60 s: {missing}")
        # A tag still missing counts as slower than any that arrived (its percentiles print as inf).
        latencies = arrived + [float("inf")] * missing
        if arrived:
            print(f"{label}: order -> tag latency: p50 {percentile(latencies, 0.5):.2f} s, "
                  f"p95 {percentile(latencies, 0.95):.2f} s, p99 {percentile(latencies, 0.99):.2f} s, "
                  f"max of those tagged {max(arrived):.2f} s, their mean {statistics.mean(arrived):.2f} s",
                  flush=True)
        return latencies

    quiet = phase("quiet")
    if args.burst:
        pending = burst_record(args.burst)
        print(f"burst: {pending:,} orders/create deliveries of {BURST_SHOP} pending", flush=True)
        loaded = phase("during the burst")
        left = WebhookEvent.objects.filter(shop_domain=BURST_SHOP, status=EventStatus.PENDING).count()
        print(f"burst: {left:,} of its deliveries still pending when the phase ended")
        if quiet and loaded:
            ratio = percentile(loaded, 0.95) / percentile(quiet, 0.95)
            print(f"order -> tag p95 during the burst / quiet: {ratio:.2f} (target <= 2)")
    rows = TagChange.objects.filter(shop=shop, segment=segment, processed_at__isnull=False)
    waits = [(r.processed_at - r.created_at).total_seconds() for r in rows]
    if waits:
        print(f"outbox row -> confirmed by Shopify: p50 {percentile(waits, 0.5):.2f} s, "
              f"p95 {percentile(waits, 0.95):.2f} s")


BURST_SHOP = "bench-burst.myshopify.com"
SAMPLE = ROOT / "bench" / "order_sample.json"


def burst_record(count: int) -> int:
    """Another installed shop's burst of `count` orders/create deliveries (2,000 customers), recorded
    as the endpoint records them, all at once; then the drain is scheduled as a delivery would."""
    from segments.shops.models import Shop, ShopStatus
    from webhooks.dispatch import drain_schedule
    from webhooks.models import WebhookEvent

    Shop.objects.get_or_create(domain=BURST_SHOP, defaults={
        "access_token": "shpat_burst", "scopes": "read_orders,read_customers", "status": ShopStatus.INSTALLED})
    sample = json.loads(SAMPLE.read_text())
    events = []
    for n in range(count):
        oid = 8_000_000_000 + n
        payload = {**sample, "id": oid, "admin_graphql_api_id": f"gid://shopify/Order/{oid}", "name": f"#B{n}",
                   "customer": {**sample["customer"], "id": 9_000_000 + n % 2000,
                                "email": f"burst{n % 2000}@example.com"},
                   "line_items": [{**item, "id": oid * 10 + i} for i, item in enumerate(sample["line_items"])]}
        events.append(WebhookEvent(webhook_id=f"burst-{n}", event_id=f"burst-{n}", shop_domain=BURST_SHOP,
                                   topic="orders/create", api_version="2026-10", payload=payload))
    WebhookEvent.objects.bulk_create(events, batch_size=2000)
    drain_schedule()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--restore-multiplier", type=float, default=1.0)
    p = sub.add_parser("crossover")
    p.add_argument("--sizes", default="100,300,1000,3000,10000")
    p.add_argument("--direct-up-to", type=int, default=1000)
    p = sub.add_parser("latency")
    p.add_argument("--customers", type=int, default=3000)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--dirty-refresh", type=float, default=1.0)   # the app's default
    p.add_argument("--tag-sync", type=float, default=1.0)
    p.add_argument("--regulars", type=int, default=200, help="members before the traffic (their orders tag nothing)")
    p.add_argument("--new-share", type=float, default=0.4, help="share of orders by customers entering the segment")
    p.add_argument("--burst", type=int, default=0,
                   help="then again while another shop's burst of this many deliveries is pending")
    args = parser.parse_args()
    {"throughput": throughput, "crossover": crossover, "latency": latency}[args.command](args)


if __name__ == "__main__":
    main()
