"""History backfill benchmark: a 100,000-customer, ~500,000-order devstore shop into PostgreSQL by one process.

    .venv/bin/python bench/backfill_bench.py [--customers 100000] [--orders-scale 1.32] [--sample-orders 2000]

devstore runs as its own process (`manage.py devstore` on a free port, state in a temporary
directory). The shop is seeded beforehand by a child process straight into devstore's state file
(the generator's `orders_scale` is not a control-API option): `--orders-scale 1.32` multiplies
repeat buyers' order counts so the personas' ~3.9 orders per customer become ~5.0, i.e. ~500,000
orders for 100,000 customers; one-time buyers and never-buyers are unchanged. The app is
installed into the shop through the real OAuth flow (Django's test client against the app's
views, tasks in-process), against a dedicated, freshly created database `shopseg_bench_backfill`;
the install plans the backfill and starts its first exports, and this process then drives
`backfill_advance` until the backfill is done, calling it again 0.25 s after it returns (as a
worker does on each `bulk_operations/finish`). Exports run ahead of loading, so the report gives
each stage's export time (devstore's own record: Shopify's side) and load time (ours), the time
this process spent in `backfill_advance` versus waiting with nothing to load, rows/s, RSS sampled
every 0.25 s, and the ratio to the 5-minute target. The baseline, measured in the same run on the
oldest orders slice's JSONL, is the obvious loader: one ORM save per row (customer get_or_create,
order, each line item), extrapolated from a sample to every row the backfill wrote.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
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

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.oauth_install import install_in_process  # noqa: E402

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

        from segments.mirror.models import ShopSync

        started = time.perf_counter()
        while not self.stop.wait(self.interval):
            lines = ShopSync.objects.filter(shop_id=self.shop_id).values_list("lines_done", flat=True).first() or 0
            self.samples.append((time.perf_counter() - started, rss_mb(), lines))
        connection.close()


SEED = """
import json, sys
from devstore.generator import seed_shop
from devstore.state import DevStore
path, shop, customers, seed, scale = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
store = DevStore(path)
store.shop_create(shop, plan="shopify")
print(json.dumps(vars(seed_shop(store, shop, customers=customers, seed=seed, orders_scale=scale))))
"""


def seed_store(db: Path, shop: str, *, customers: int, seed: int, orders_scale: float) -> dict:
    """Seed the shop into devstore's state file from a child process (this one's RSS stays the loader's)."""
    done = subprocess.run([sys.executable, "-c", SEED, str(db), shop, str(customers), str(seed), str(orders_scale)],
                          check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_devstore(tmp: Path, port: int, *, app_key: str = APP_KEY, app_secret: str = APP_SECRET,
                   timeout: float = 20.0) -> subprocess.Popen:
    """devstore as its own process on `port` with the app registered (a large state file takes a
    while to open: give it a longer `timeout`)."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "devstore", "--port", str(port), "--db", str(tmp / "devstore.db"),
         "--app-key", app_key, "--app-secret", app_secret, "--app-url", "http://127.0.0.1:9/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"devstore exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_control/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("devstore did not start")


def install(devstore_url: str, shop: str) -> None:
    """The merchant's install click, followed hop by hop (as tests/conftest.py's run_install)."""
    install_in_process(devstore_url, shop, APP_KEY)


def drive(shop_id: int) -> dict:
    """Advance the backfill until done: seconds spent in backfill_advance and seconds waiting idle."""
    from segments.mirror.backfill import backfill_advance
    from segments.mirror.models import BackfillStatus, ShopSync

    busy = idle = 0.0
    calls = 0
    while True:
        started = time.perf_counter()
        status = backfill_advance(shop_id=shop_id)
        busy += time.perf_counter() - started
        calls += 1
        if status in (BackfillStatus.DONE, BackfillStatus.FAILED):
            if status == BackfillStatus.FAILED:
                raise SystemExit(f"backfill failed: {ShopSync.objects.get(shop_id=shop_id).backfill_error}")
            return {"busy": busy, "idle": idle, "calls": calls}
        started = time.perf_counter()
        time.sleep(0.25)
        idle += time.perf_counter() - started


def export_windows(db: Path) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """Each bulk operation's (created, completed) as devstore recorded them (whole seconds)."""
    import sqlite3

    def moment(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, created_at, completed_at FROM bulk_operations WHERE type = 'QUERY'").fetchall()
    return {f"gid://shopify/BulkOperation/{i}": (moment(c), moment(d)) for i, c, d in rows if d}


def naive_rows_per_second(shop_id: int, operation_id: str, sample_orders: int) -> tuple[float, int]:
    """One ORM save per row over the first `sample_orders` orders of the orders export (a fresh shop)."""
    from segments.mirror.backfill_plan import BULK_OPERATION
    from segments.mirror.graphql import jsonl_groups, order_record
    from segments.shops.bulk_operations import jsonl_lines
    from segments.mirror.models import Customer, LineItem, Order
    from segments.shops.graphql import shop_graphql
    from segments.shops.models import Shop

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
    parser.add_argument("--orders-scale", type=float, default=1.32,
                        help="generator order volume: repeat buyers' order counts times this (1.0: the personas' own)")
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

    from segments.mirror.models import Checkout, Customer, LineItem, Order, Product, Refund, ShopSync
    from segments.shops.models import Shop

    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as tmp:
        shop = f"bench-{uuid.uuid4().hex[:8]}.myshopify.com"
        seeded_at = time.perf_counter()
        report = seed_store(Path(tmp) / "devstore.db", shop, customers=args.customers, seed=args.seed,
                            orders_scale=args.orders_scale)
        seed_seconds = time.perf_counter() - seeded_at
        devstore = start_devstore(Path(tmp), port)
        try:
            url = f"http://127.0.0.1:{port}"
            rss_before = rss_mb()
            started = time.perf_counter()
            install(url, shop)
            installed = time.perf_counter() - started
            shop_id = Shop.objects.get(domain=shop).pk
            sampler = Sampler(shop_id)
            sampler.start()
            run = drive(shop_id)
            total = time.perf_counter() - started
            sampler.stop.set()
            sampler.join()
            devstore_peak = peak_rss_mb(devstore.pid)
            sync = ShopSync.objects.get(shop_id=shop_id)
            windows = export_windows(Path(tmp) / "devstore.db")
            counts = {
                "customers": Customer.objects.filter(shop_id=shop_id).count(),
                "products": Product.objects.filter(shop_id=shop_id).count(),
                "orders": Order.objects.filter(shop_id=shop_id).count(),
                "line_items": LineItem.objects.filter(shop_id=shop_id).count(),
                "refunds": Refund.objects.filter(shop_id=shop_id).count(),
                "abandoned_checkouts": Checkout.objects.filter(shop_id=shop_id).count(),
            }
            revenue = Order.objects.filter(shop_id=shop_id).aggregate(s=Sum("total"))["s"]
            orders_operation = next(s["operation"] for s in sync.stages if s["root"] == "orders")
            naive_rate, naive_rows = naive_rows_per_second(shop_id, orders_operation, args.sample_orders)
        finally:
            devstore.terminate()
            devstore.wait(timeout=30)

    rows = sum(counts.values())
    stages = sync.stages
    load = sum(st.get("load_seconds", 0.0) for st in stages)
    exports = [windows[st["operation"]] for st in stages if st["operation"] in windows]
    export_sum = sum((done - begun).total_seconds() for begun, done in exports)
    export_span = (max(done for _, done in exports) - min(begun for begun, _ in exports)).total_seconds()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"devstore           separate process (manage.py devstore), seeded {report['customers']:,} customers "
          f"(seed {args.seed}, orders scale {args.orders_scale}) in {seed_seconds:.0f} s: {report['orders']:,} orders "
          f"({report['test_orders']:,} test; {report['orders'] / report['customers']:.2f} per customer), "
          f"{report['line_items']:,} line items, {report['checkouts']:,} abandoned checkouts, "
          f"{report['products']} products")
    print(f"mirror rows        {rows:,}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
          + f"; order revenue {revenue:,}")
    print(f"JSONL lines        {sync.lines_done:,} of objectCount {sync.objects_total:,}, {len(stages)} exports")
    origin = min(begun for begun, _ in exports)
    for st in stages:
        begun, done = windows.get(st["operation"], (origin, origin))
        label = st["root"] + (" " + st["search"].replace("test:false", "").strip() if st["root"] == "orders" else "")
        print(f"  {label[:78]:<78} export {(begun - origin).total_seconds():5.0f}-{(done - origin).total_seconds():4.0f} s"
              f" ({(done - begun).total_seconds():5.0f} s)  load {st.get('load_seconds', 0):6.1f} s  "
              f"{st['objects']:>9,} lines  {st['objects'] / max(st.get('load_seconds', 0), 1e-9):>7,.0f} lines/s")
    print(f"seconds            {total:.1f} install to done = {installed:.1f} install (plans, starts the first exports)"
          f" + {run['busy']:.1f} in backfill_advance ({load:.1f} loading stages) + {run['idle']:.1f} idle, "
          f"waiting for an export with nothing to load ({run['calls']} calls)")
    print(f"overlap            exports {export_sum:.1f} s summed (first start to last finish {export_span:.1f} s) + "
          f"loads {load:.1f} s = {export_sum + load:.1f} s one after the other; done in {total:.1f} s")
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
