"""History backfill benchmark: a 100,000-customer devstore shop into PostgreSQL by one process.

    .venv/bin/python bench/backfill_bench.py [--customers 100000] [--sample-orders 2000]

devstore runs as its own process (`manage.py devstore` on a free port, state in a temporary
directory) and is seeded through its control API. The app is installed into the shop through the
real OAuth flow (Django's test client against the app's views, tasks in-process), against a
dedicated, freshly created database `shopseg_bench_backfill`; the install starts the backfill, and
this process then drives `backfill_advance` until the backfill is done, as a worker would after each
`bulk_operations/finish`. It prints the wall time split into waiting for devstore's exports (Shopify's
side) and loading them (ours), rows/s, RSS sampled every 0.25 s during the run, and the ratio to the
5-minute target. The baseline, measured in the same run on the same orders JSONL, is the obvious
loader: one ORM save per row (customer get_or_create, order, each line item), extrapolated from a
sample to every row the backfill wrote.
"""
from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "shopseg_bench_backfill"
TARGET_SECONDS = 300.0
APP_KEY, APP_SECRET = "bench-backfill-key", "bench-backfill-secret-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database() -> str:
    url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                   env={**os.environ, "DATABASE_URL": url})
    return url


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """RSS of this process (and the mirror's progress) every `interval` seconds."""

    def __init__(self, shop_id: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.shop_id, self.interval = shop_id, interval
        self.samples: list[tuple[float, float, int]] = []   # (seconds, RSS MB, lines_done)
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from segments.models import ShopSync

        started = time.perf_counter()
        while not self.stop.wait(self.interval):
            lines = ShopSync.objects.filter(shop_id=self.shop_id).values_list("lines_done", flat=True).first() or 0
            self.samples.append((time.perf_counter() - started, rss_mb(), lines))
        connection.close()


def start_devstore(tmp: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "devstore", "--port", str(port), "--db", str(tmp / "devstore.db"),
         "--fresh", "--app-key", APP_KEY, "--app-secret", APP_SECRET, "--app-url", "http://127.0.0.1:9/"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "shopseg.settings"})
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_control/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("devstore did not start")


def install(devstore_url: str, shop: str) -> None:
    """The merchant's install click, followed hop by hop (as tests/conftest.py's run_install)."""
    from django.test import Client

    def local(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    client = Client()
    with httpx.Client(timeout=60) as http:
        click = http.get(f"{devstore_url}/shops/{shop}/admin/_install/{APP_KEY}")
        entry = client.get(local(click.headers["Location"]))
        authorize = http.get(entry["Location"])
        done = client.get(local(authorize.headers["Location"]))
    if done.status_code != 302:
        raise SystemExit(f"install failed: {done.status_code}")


def drive(shop_id: int) -> dict:
    """Advance the backfill until done; per stage: seconds waiting for the export and seconds loading."""
    from segments.models import BackfillStatus, ShopSync
    from segments.services.backfill import backfill_advance

    stages: list[dict] = []
    waiting = 0.0
    operations: list[str] = []
    while True:
        before = ShopSync.objects.get(shop_id=shop_id)
        if not operations or operations[-1] != before.bulk_operation_id:
            operations.append(before.bulk_operation_id)
        started = time.perf_counter()
        status = backfill_advance(shop_id=shop_id)
        spent = time.perf_counter() - started
        after = ShopSync.objects.get(shop_id=shop_id)
        if after.lines_done != before.lines_done or status != BackfillStatus.RUNNING \
                or after.bulk_operation_id != before.bulk_operation_id:
            stages.append({"operation": before.bulk_operation_id, "export_wait": waiting, "load": spent,
                           "lines": after.lines_done - before.lines_done})
            waiting = 0.0
        else:
            time.sleep(0.25)
            waiting += time.perf_counter() - started
        if status in (BackfillStatus.DONE, BackfillStatus.FAILED):
            if status == BackfillStatus.FAILED:
                raise SystemExit(f"backfill failed: {after.backfill_error}")
            return {"stages": stages, "operations": operations}


def naive_rows_per_second(shop_id: int, operation_id: str, sample_orders: int) -> tuple[float, int]:
    """One ORM save per row over the first `sample_orders` orders of the orders export (a fresh shop)."""
    from segments.mirror.graphql import jsonl_groups, jsonl_lines, order_record
    from segments.models import Customer, LineItem, Order, Shop
    from segments.services.backfill import BULK_OPERATION
    from segments.services.reconcile import shop_graphql

    operation = shop_graphql(shop_id=shop_id, query=BULK_OPERATION, variables={"id": operation_id}).data
    url = operation["bulkOperation"]["url"]
    baseline = Shop.objects.create(domain=f"baseline-{uuid.uuid4().hex[:8]}.myshopify.com")
    rows = 0
    started = time.perf_counter()
    with httpx.Client(timeout=300) as http, http.stream("GET", url) as response:
        for index, group in enumerate(jsonl_groups(jsonl_lines(response.iter_bytes(1 << 16)))):
            if index == sample_orders:
                break
            record = order_record(group.node, line_items=group.children_of("LineItem"),
                                  shipping_lines=group.children_of("ShippingLine"))
            if record is None:
                continue
            customer = None
            if record.customer_shopify_id:
                customer, _ = Customer.objects.get_or_create(shop=baseline, shopify_id=record.customer_shopify_id)
            order = Order.objects.create(
                shop=baseline, shopify_id=record.shopify_id, customer=customer, email=record.email.lower(),
                name=record.name, created_at=record.created_at, processed_at=record.processed_at,
                updated_at=record.updated_at, cancelled_at=record.cancelled_at,
                financial_status=record.financial_status, currency=record.currency, subtotal=record.subtotal,
                total=record.total, total_discounts=record.total_discounts, total_shipping=record.total_shipping,
                total_refunded=record.total_refunded, discount_codes=record.discount_codes,
                source_name=record.source_name, device=record.device, shipping_method=record.shipping_method,
                shipping_speed=record.shipping_speed)
            rows += 1
            for item in record.line_items:
                LineItem.objects.create(shop=baseline, order=order, shopify_id=item.shopify_id,
                                        product_id=item.product_id, variant_id=item.variant_id, title=item.title,
                                        vendor=item.vendor, product_type=item.product_type, quantity=item.quantity,
                                        price=item.price, total_discount=item.total_discount)
                rows += 1
    return rows / (time.perf_counter() - started), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-orders", type=int, default=2000, help="orders in the naive-baseline sample")
    args = parser.parse_args()

    port = free_port()
    os.environ.update({
        "DATABASE_URL": fresh_database(), "SHOPIFY_API_KEY": APP_KEY, "SHOPIFY_API_SECRET": APP_SECRET,
        "SHOPIFY_SHOP_BASE_URL": f"http://127.0.0.1:{port}/shops/{{shop}}", "SHOPSEG_APP_URL": "http://127.0.0.1:9",
        "DJANGO_SETTINGS_MODULE": "shopseg.settings", "SHOPIFY_HTTP_TIMEOUT_SECONDS": "60"})
    os.environ.pop("REDIS_URL", None)     # tasks in-process: this one process is the worker
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from django.db.models import Sum

    from segments.models import Checkout, Customer, LineItem, Order, Product, Refund, Shop, ShopSync

    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as tmp:
        devstore = start_devstore(Path(tmp), port)
        try:
            url = f"http://127.0.0.1:{port}"
            shop = f"bench-{uuid.uuid4().hex[:8]}.myshopify.com"
            with httpx.Client(timeout=3600) as http:
                http.post(f"{url}/_control/shops", json={"domain": shop, "plan": "shopify"}).raise_for_status()
                seeded_at = time.perf_counter()
                report = http.post(f"{url}/_control/shops/{shop}/seed",
                                   json={"customers": args.customers, "seed": args.seed}).json()
                seed_seconds = time.perf_counter() - seeded_at
            rss_before = rss_mb()
            started = time.perf_counter()
            install(url, shop)
            shop_id = Shop.objects.get(domain=shop).pk
            sampler = Sampler(shop_id)
            sampler.start()
            run = drive(shop_id)
            total = time.perf_counter() - started
            sampler.stop.set()
            sampler.join()
            devstore_peak = peak_rss_mb(devstore.pid)
            sync = ShopSync.objects.get(shop_id=shop_id)
            counts = {
                "customers": Customer.objects.filter(shop_id=shop_id).count(),
                "products": Product.objects.filter(shop_id=shop_id).count(),
                "orders": Order.objects.filter(shop_id=shop_id).count(),
                "line_items": LineItem.objects.filter(shop_id=shop_id).count(),
                "refunds": Refund.objects.filter(shop_id=shop_id).count(),
                "abandoned_checkouts": Checkout.objects.filter(shop_id=shop_id).count(),
            }
            revenue = Order.objects.filter(shop_id=shop_id).aggregate(s=Sum("total"))["s"]
            orders_operation = run["operations"][2]
            naive_rate, naive_rows = naive_rows_per_second(shop_id, orders_operation, args.sample_orders)
        finally:
            devstore.terminate()
            devstore.wait(timeout=30)

    rows = sum(counts.values())
    load = sum(s["load"] for s in run["stages"])
    export_wait = sum(s["export_wait"] for s in run["stages"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"devstore           separate process (manage.py devstore), seeded {report.get('customers'):,} customers "
          f"(seed {args.seed}) in {seed_seconds:.0f} s: {report.get('orders'):,} orders "
          f"({report.get('test_orders', 0)} test), {report.get('line_items'):,} line items, "
          f"{report.get('checkouts'):,} abandoned checkouts, {report.get('products')} products")
    print(f"mirror rows        {rows:,}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
          + f"; order revenue {revenue:,}")
    print(f"JSONL lines        {sync.lines_done:,} of objectCount {sync.objects_total:,}")
    for name, stage in zip(("customers", "products", "orders", "abandonedCheckouts"), run["stages"]):
        print(f"  {name:<18} export wait {stage['export_wait']:6.1f} s   load {stage['load']:6.1f} s   "
              f"{stage['lines']:>9,} lines  {stage['lines'] / max(stage['load'], 1e-9):>8,.0f} lines/s")
    print(f"seconds            {total:.1f} install to done = {export_wait:.1f} waiting for devstore's exports "
          f"+ {load:.1f} loading (+ {total - export_wait - load:.1f} install and polls)")
    print(f"rows/s             {rows / load:,.0f} while loading; {rows / total:,.0f} end to end")
    points = sampler.samples[:: max(1, len(sampler.samples) // 10)] + sampler.samples[-1:]
    print(f"RSS                before {rss_before:.0f} MB; during the run (s, MB, lines done): "
          + ", ".join(f"({t:.0f}, {m:.0f}, {n:,})" for t, m, n in points))
    print(f"peak RSS           {peak:.0f} MB this process (ru_maxrss); devstore process {devstore_peak:.0f} MB")
    print(f"target             {TARGET_SECONDS:.0f} s  ratio end-to-end/target {total / TARGET_SECONDS:.2f}, "
          f"loading/target {load / TARGET_SECONDS:.2f}")
    naive_seconds = rows / naive_rate
    print(f"baseline (naive)   one ORM save per row: {naive_rate:,.0f} rows/s on {naive_rows:,} rows "
          f"({args.sample_orders:,} orders with their line items) -> {naive_seconds:,.0f} s for these {rows:,} rows; "
          f"the streaming loader is {naive_seconds / load:.1f}x faster")


if __name__ == "__main__":
    main()
