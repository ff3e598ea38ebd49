"""History replay benchmark: a 5,000-customer devstore shop whose history ends 30 days ago, freshly
installed with the 16 template segments, replayed through its last 28 days (PostgreSQL).

    flock /tmp/shopseg-bench.lock .venv/bin/python bench/history_replay_bench.py \
        [--customers 5000] [--days 28] [--baseline-days 7] [--profile FILE]

devstore runs in this process (its own server thread, webhooks delivered over HTTP) and so does the
app (its WSGI entry point served by a threaded server, tasks eager as in the embedded setup), on a
fresh database `bench_e_replay`. Two shops are seeded alike (same seed, same customers) and
installed through the real OAuth flow; their history is imported and the template segments are
computed (untimed). Timed: the baseline, the replay as first built (every day a full metrics
rebuild and a full recompute of every segment) over `--baseline-days` days of the first shop, and
the replay as it runs now over `--days` days of the second. Printed: each run's seconds per phase,
total, seconds per day, the ratio per day, the planted lift, and the 45 s target.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB = "bench_e_replay"
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
TARGET = 45.0
HISTORY_DAYS_AGO = 30
APP_KEY, APP_SECRET = "bench-replay-key", "bench-replay-secret-0123456789abcdef0123456789"


def fresh_database() -> None:
    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                   env={**os.environ, "DATABASE_URL": URL})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(port: int):
    """The app's WSGI entry point (with its webhook fast path) on a threaded server in this process."""
    from werkzeug.serving import make_server

    from shopseg.wsgi import application

    server = make_server("127.0.0.1", port, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def settle(devstore_url: str, domain: str, timeout: float = 600) -> None:
    """Deliver devstore's queued webhooks and drain them until the shop's history import is done."""
    from segments.mirror.backfill import backfill_advance
    from segments.mirror.models import BackfillStatus, ShopSync
    from segments.shops.models import Shop
    from webhooks.services import webhook_events_drain

    shop = Shop.objects.get(domain=domain)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=60) as http:
        while True:
            http.post(f"{devstore_url}/_control/webhooks/flush", params={"timeout": 30})
            webhook_events_drain()
            status = ShopSync.objects.filter(shop=shop).values_list("backfill_status", flat=True).first()
            if status == BackfillStatus.DONE:
                return
            if status == BackfillStatus.FAILED or time.monotonic() > deadline:
                raise SystemExit(f"backfill of {domain}: {status}")
            backfill_advance(shop_id=shop.pk)
            time.sleep(0.25)


def prepare(store, devstore_url: str, domain: str, customers: int, history_end: dt.datetime):
    """A seeded, installed shop with its history imported and the template segments computed."""
    from django.core.management import call_command
    from django.db import connection

    from devstore.generator import seed_shop
    from segments.membership.models import Segment
    from segments.shops.models import Shop

    store.shop_create(domain, plan="shopify")
    seed_shop(store, domain, customers=customers, seed=11, now=history_end)
    with httpx.Client(follow_redirects=True, timeout=120) as merchant:
        landed = merchant.get(f"{devstore_url}/shops/{domain}/admin/_install/{APP_KEY}")
    if landed.status_code != 200:
        raise SystemExit(f"install of {domain} failed: {landed.status_code}")
    settle(devstore_url, domain)
    shop = Shop.objects.get(domain=domain)
    call_command("segments", "--shop", domain, "--from-templates", stdout=io.StringIO())
    segments = Segment.objects.filter(shop=shop)
    if segments.count() != 16 or any(s.computed_version is None for s in segments):
        raise SystemExit(f"{domain}: expected 16 computed template segments")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return shop


def run(shop, *, days: int, full_nightly: bool, profile: str | None):
    from devstore.history_replay import history_replay

    started, cpu = time.perf_counter(), time.process_time()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(history_replay, shop=shop, days=days, seed=5, effect=0.5,
                                  template="high_value_repeat", holdout=20, full_nightly=full_nightly)
        profiler.dump_stats(profile)
    else:
        result = history_replay(shop=shop, days=days, seed=5, effect=0.5, template="high_value_repeat", holdout=20,
                                full_nightly=full_nightly)
    result.cpu = time.process_time() - cpu     # this process: the app, devstore and the replay
    return time.perf_counter() - started, result


def report(label: str, seconds: float, result) -> float:
    per_day = seconds / result.days
    phases = ", ".join(f"{name} {value:.1f}" for name, value in result.phases.items())
    lift = result.lift
    print(f"{label}: {result.days} days in {seconds:.1f} s ({per_day:.2f} s/day); "
          f"{result.orders_placed} orders, {result.snapshots_written} snapshots, "
          f"{result.membership_events} membership events; CPU {result.cpu:.1f} s", flush=True)
    print(f"  phases (s): {phases}", flush=True)
    print(f"  lift: treated {lift['treated_rate']:.4f} vs holdout {lift['holdout_rate']:.4f}, "
          f"diff {lift['diff']:+.4f}, p {lift['p_value']:.2g}, significant {lift['significant']}", flush=True)
    return per_day


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--baseline-days", type=int, default=7, help="0: no baseline run")
    parser.add_argument("--profile", help="write the new run's cProfile stats here")
    parser.add_argument("--profile-baseline", help="write the baseline run's cProfile stats here")
    args = parser.parse_args()

    fresh_database()
    dev_port, app_port = free_port(), free_port()
    devstore_url, app_url = f"http://127.0.0.1:{dev_port}", f"http://127.0.0.1:{app_port}"
    os.environ.pop("REDIS_URL", None)      # tasks eager, in this process
    os.environ.update({"DATABASE_URL": URL, "SHOPIFY_API_KEY": APP_KEY, "SHOPIFY_API_SECRET": APP_SECRET,
                       "SHOPSEG_APP_URL": app_url, "DJANGO_ALLOWED_HOSTS": "*", "SHOPSEG_LOG_LEVEL": "WARNING",
                       "SHOPIFY_SHOP_BASE_URL": devstore_url + "/shops/{shop}",
                       "DJANGO_SETTINGS_MODULE": "shopseg.settings"})
    import logging

    import django

    django.setup()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from devstore.config import DevstoreConfig
    from devstore.server import DevstoreServer
    from devstore.state import DevStore
    from segments.shops.models import Shop

    tmp = Path(tempfile.mkdtemp(prefix="replaybench-"))
    store = DevStore(tmp / "devstore.db")
    devstore = DevstoreServer(store, DevstoreConfig(public_url=devstore_url, time_scale=0.001),
                              port=dev_port).start()
    app = serve_app(app_port)
    store.app_register(api_key=APP_KEY, api_secret=APP_SECRET, app_url=app_url + "/")
    history_end = dt.datetime.now(dt.UTC) - dt.timedelta(days=HISTORY_DAYS_AGO)
    try:
        shops = {}
        for name in (["baseline"] if args.baseline_days else []) + ["new"]:
            started = time.perf_counter()
            shops[name] = prepare(store, devstore_url, f"replay-{name}.myshopify.com", args.customers, history_end)
            print(f"{name} shop: {args.customers:,} customers seeded, installed, imported, 16 segments computed "
                  f"in {time.perf_counter() - started:.0f} s (untimed)", flush=True)
        baseline = None
        if args.baseline_days:
            seconds, result = run(shops["baseline"], days=args.baseline_days, full_nightly=True,
                                  profile=args.profile_baseline)
            baseline = report("baseline (full rebuild + full recompute every day)", seconds, result)
        seconds, result = run(Shop.objects.get(pk=shops["new"].pk), days=args.days, full_nightly=False,
                              profile=args.profile)
        per_day = report("new", seconds, result)
        if baseline:
            print(f"per day: {baseline:.2f} s -> {per_day:.2f} s ({baseline / per_day:.1f}x); "
                  f"baseline extrapolated to {args.days} days: {baseline * args.days:.0f} s", flush=True)
        print(f"{args.days} days: {seconds:.1f} s, target {TARGET:.0f} s: "
              f"{'met' if seconds < TARGET else 'MISSED'} ({seconds / TARGET:.0%} of it)", flush=True)
    finally:
        app.shutdown()
        devstore.stop()


if __name__ == "__main__":
    main()
