"""Order deliveries accepted by the endpoint and applied by the worker, side by side.

    flock /tmp/shopseg-bench.lock .venv/bin/python bench/webhook_flow_bench.py \
        [--deliveries 15000] [--senders 8] [--customers 2000] [--overlap 300]

The whole system as production runs it (bench/stack.py): devstore seeded with --customers, the app
under gunicorn (shopseg/gunicorn_conf.py), one Celery worker of 2 processes and beat on Redis, the
shop installed through OAuth and backfilled, the 16 template segments created (so the worker's
dirty refresh and tag sync run beside the drain as they do for a merchant).

--senders processes then POST validly signed `orders/create` deliveries (Shopify's sample order,
bench/order_sample.json, each with its own order, line item and webhook ids) to /webhooks/shopify
as fast as the responses come back, all for customers drawn from the same --overlap customers, so
concurrent deliveries and batches share customer rows. Printed side by side:

- accepted: 200 responses per second of the sending window (the endpoint);
- applied: deliveries processed per second, from the first send until the last one is applied
  (the worker; the figure the issue's target, 500/s, is about), and its ratio to accepted;
- the backlog when sending stopped, deliveries retried or failed, and the deadlocks PostgreSQL
  detected in the database during the run (pg_stat_database.deadlocks);
- CPU per delivery of the endpoint (gunicorn), the worker (its processes and beat) and PostgreSQL.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import io
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stack import APP_SECRET, Stack, psql  # noqa: E402

DB = "shopseg_bench_flow"
SHOP = "bench-flow.myshopify.com"
TARGET = 500.0
SAMPLE = ROOT / "bench" / "order_sample.json"
FIRST_ORDER = 8_500_000_000


def deliveries(count: int, customers: list[tuple[int, str]], seed: int = 1) -> list[tuple[bytes, dict]]:
    """(body, headers) of `count` signed orders/create deliveries for the given customers."""
    sample = json.loads(SAMPLE.read_text())
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for n in range(count):
        oid = FIRST_ORDER + n
        customer, email = rng.choice(customers)
        stamp = (now - dt.timedelta(seconds=count - n)).isoformat(timespec="seconds")
        body = json.dumps({
            **sample, "id": oid, "admin_graphql_api_id": f"gid://shopify/Order/{oid}", "name": f"#F{n}",
            "order_number": 100_000 + n, "email": email, "contact_email": email, "created_at": stamp,
            "processed_at": stamp, "updated_at": stamp, "test": False, "checkout_token": None, "cart_token": None,
            "customer": {**sample["customer"], "id": customer, "email": email,
                         "admin_graphql_api_id": f"gid://shopify/Customer/{customer}"},
            "line_items": [{**item, "id": oid * 10 + i} for i, item in enumerate(sample["line_items"])],
            "refunds": []}).encode()
        signature = base64.b64encode(hmac.new(APP_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        out.append((body, {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                           "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Shop-Domain": SHOP,
                           "X-Shopify-Webhook-Id": f"flow-{oid}", "X-Shopify-Event-Id": f"flow-{oid}",
                           "X-Shopify-API-Version": "2026-10", "X-Shopify-Triggered-At": stamp}))
    return out


_WORK: list[tuple[bytes, dict]] = []   # filled before the senders fork


def send(port: int, start: int, step: int, results) -> None:
    """One sender: every `step`-th delivery from `start`, one at a time on a kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ok = refused = 0
    began = time.time()
    for body, headers in _WORK[start::step]:
        conn.request("POST", "/webhooks/shopify", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            ok += 1
        else:
            refused += 1
    results.put((began, time.time(), ok, refused))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=15000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--overlap", type=int, default=300, help="customers the deliveries are drawn from")
    args = parser.parse_args()

    with Stack(db=DB, shop=SHOP, customers=args.customers, gunicorn=None) as stack:
        from django.core.management import call_command
        from django.db.models import Max

        from webhooks.models import EventStatus, WebhookEvent

        call_command("segments", "--shop", SHOP, "--from-templates", stdout=io.StringIO())
        time.sleep(5)   # the template segments' first computation is the worker's
        customers = [tuple(row) for row in stack.store.conn().execute(
            "SELECT id, email FROM customers WHERE shop = ? ORDER BY id LIMIT ?", (SHOP, args.overlap))]
        _WORK[:] = deliveries(args.deliveries, customers)
        port = int(stack.app_url.rsplit(":", 1)[1])
        deadlocks_before = int(psql(f"SELECT deadlocks FROM pg_stat_database WHERE datname = '{DB}'"))
        cpu_before = stack.cpu()
        fork = multiprocessing.get_context("fork")
        results = fork.Queue()
        senders = [fork.Process(target=send, args=(port, n, args.senders, results)) for n in range(args.senders)]
        first_send = time.time()
        for sender in senders:
            sender.start()
        outcomes = [results.get() for _ in senders]
        for sender in senders:
            sender.join()
        last_accept = max(end for _, end, _, _ in outcomes)
        accepted = sum(ok for _, _, ok, _ in outcomes)
        refused = sum(no for _, _, _, no in outcomes)
        ours = WebhookEvent.objects.filter(shop_domain=SHOP, topic="orders/create", webhook_id__startswith="flow-")
        backlog = ours.filter(status=EventStatus.PENDING).count()
        deadline = time.time() + 600
        while ours.filter(status=EventStatus.PENDING).exists() and time.time() < deadline:
            time.sleep(0.2)
        last_applied = ours.aggregate(last=Max("processed_at"))["last"].timestamp()
        processed = ours.filter(status=EventStatus.PROCESSED).count()
        failed = ours.filter(status=EventStatus.FAILED).count()
        retried = ours.filter(attempts__gt=1).count()
        deadlocks = int(psql(f"SELECT deadlocks FROM pg_stat_database WHERE datname = '{DB}'")) - deadlocks_before
        cpu_after = stack.cpu()
        cpu = {part: cpu_after[part] - cpu_before.get(part, 0.0) for part in cpu_after}

    send_seconds, apply_seconds = last_accept - first_send, last_applied - first_send
    accept_rate, apply_rate = accepted / send_seconds, processed / apply_seconds
    print(f"deliveries: {args.deliveries:,} orders/create from {args.senders} senders for {len(customers)} customers "
          f"({args.customers:,} in the shop, 16 template segments)")
    print(f"accepted  {accepted:7,} in {send_seconds:6.1f} s  {accept_rate:6.0f}/s   (refused {refused})")
    print(f"applied   {processed:7,} in {apply_seconds:6.1f} s  {apply_rate:6.0f}/s   ratio to accepted "
          f"{apply_rate / accept_rate:.2f}, to the target {TARGET:.0f}/s: {apply_rate / TARGET:.2f}")
    print(f"backlog when sending stopped {backlog:,}; retried {retried}, failed {failed}; "
          f"deadlocks in the database during the run: {deadlocks}")
    print("CPU per delivery: " + ", ".join(f"{part} {seconds / args.deliveries * 1000:.2f} ms"
                                           for part, seconds in cpu.items())
          + " (PostgreSQL: this database's backends)")


if __name__ == "__main__":
    main()
