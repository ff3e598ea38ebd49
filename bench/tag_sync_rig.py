"""bench/tag_sync_bench.py's throughput rig: devstore as a process, the app installed in this process,
and one tag sync run the direct way or through a bulk operation."""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.oauth_install import install_in_process  # noqa: E402
from bench.stack import free_port, wait_http  # noqa: E402

APP_KEY, APP_SECRET = "bench-tags-key", "bench-tags-secret-0123456789abcdef0123456789abcdef"
SHOP = "bench-tags.myshopify.com"
MUTATION = 10
STANDARD_RESTORE, STANDARD_BUCKET = 100.0, 2000.0
FIRST_ID = 7_100_000_001


class Rig:
    """devstore as a process, the app installed in this process (tasks in-process), a clean shop."""

    def __init__(self, multiplier: float):
        self.tmp = Path(tempfile.mkdtemp(prefix="tagbench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.multiplier = multiplier
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "devstore", "--port", str(self.port),
             "--db", str(self.tmp / "devstore.db"), "--fresh", "--shop", SHOP, "--plan", "shopify",
             "--app-key", APP_KEY, "--app-secret", APP_SECRET, "--app-url", "http://127.0.0.1:9/",
             "--restore-multiplier", str(multiplier)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "SHOPSEG_LOG_LEVEL": "WARNING"})
        if not wait_http(f"{self.url}/_control/health"):
            raise SystemExit("devstore did not start")
        self.next_id = FIRST_ID
        self.restore = STANDARD_RESTORE * multiplier
        self.bucket = STANDARD_BUCKET * multiplier

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def install(self):
        from django.conf import settings

        from segments.shops.models import Shop

        settings.SHOPIFY_SHOP_BASE_URL = self.url + "/shops/{shop}"
        settings.SHOPSEG_APP_URL = "http://127.0.0.1:9"
        settings.ALLOWED_HOSTS = ["*"]
        install_in_process(self.url, SHOP, APP_KEY)
        httpx.post(f"{self.url}/_control/faults", json={"shop": SHOP, "kind": "drop_webhooks",
                                                         "params": {"rate": 1.0}}).raise_for_status()
        return Shop.objects.get(domain=SHOP)

    def customers(self, shop, count: int, tag: str) -> list[int]:
        """`count` customers carrying the merchant tag `tag`, in devstore and in the mirror (not timed)."""
        from django.db import connection

        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        db = sqlite3.connect(self.tmp / "devstore.db", timeout=60)
        db.execute("PRAGMA busy_timeout=60000")
        with db:
            db.executemany("INSERT INTO customers (id, shop, first_name, last_name, email, tags, created_at, "
                           "updated_at) VALUES (?, ?, 'Bench', 'Customer', ?, ?, ?, ?)",
                           [(sid, SHOP, f"c{sid}@example.com", json.dumps([tag]), stamp, stamp) for sid in ids])
        db.close()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO segments_customer (shop_id, shopify_id, email, phone, first_name, last_name, state, "
                "email_marketing, sms_marketing, tags, created_at, updated_at, dirty_cause) "
                "SELECT %s, g, 'c' || g || '@example.com', '', 'Bench', 'Customer', 'enabled', 'unknown', "
                "'unknown', jsonb_build_array(%s::text), now() - interval '100 days', now() - interval '100 days', '' "
                "FROM generate_series(%s::bigint, %s::bigint) AS g", [shop.pk, tag, ids[0], ids[-1]])
        return ids

    def segment(self, shop, handle: str, tag: str):
        """A segment of exactly the customers carrying `tag`, computed: N outbox rows."""
        from segments.membership.models import Segment, SegmentVersion
        from segments.membership.recompute import segments_recompute
        from segments.metrics.refresh import customer_metrics_rebuild

        segment = Segment.objects.create(shop=shop, name=handle, handle=handle)
        SegmentVersion.objects.create(segment=segment, number=1, rules={
            "version": 1, "include": {"metric": "has_tag", "op": "is", "value": True, "params": {"tag": tag}}})
        customer_metrics_rebuild(shop=shop)
        segments_recompute(shop=shop, segments=[segment])
        return segment

    def wait_bucket_full(self) -> None:
        time.sleep(self.bucket / self.restore + 1)


def run_direct(shop) -> dict:
    from segments.membership.models import TagChange
    from segments.tags.sync import shop_tags_sync

    totals = {"calls": 0, "requests": 0, "points": 0.0, "throttled": 0, "transient": 0}
    started = time.perf_counter()
    while TagChange.objects.filter(shop=shop, processed_at__isnull=True).exists():
        report = shop_tags_sync(shop_id=shop.pk, budget_seconds=3600, use_bulk=False)
        for key in totals:
            totals[key] += getattr(report, key)
        if report.stopped:
            raise SystemExit(f"sync stopped: {report.stopped}")
    totals["seconds"] = time.perf_counter() - started
    return totals


def run_bulk(shop, poll: float = 0.5) -> dict:
    from segments.membership.models import TagChange
    from segments.tags.bulk import ACTIVE
    from segments.tags.models import TagBulkOperation
    from segments.tags.sync import shop_tags_sync

    totals = {"requests": 0, "points": 0.0}
    started = time.perf_counter()
    while True:
        report = shop_tags_sync(shop_id=shop.pk, budget_seconds=3600, use_bulk=True)
        totals["requests"] += report.requests
        totals["points"] += report.points
        active = TagBulkOperation.objects.filter(shop=shop, status__in=ACTIVE).exists()
        if not active and not TagChange.objects.filter(shop=shop, processed_at__isnull=True).exists():
            break
        time.sleep(poll)
    totals["seconds"] = time.perf_counter() - started
    return totals
