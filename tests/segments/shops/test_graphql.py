"""One way to Shopify's GraphQL Admin API: every call goes through the shop's sender and its shared
cost budget, so reconciliation and a large tag sync running together never send into a bucket the
other emptied (devstore counts THROTTLED answers); and no code calls the client any other way."""
from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from segments.mirror.reconcile import shop_reconcile
from segments.shops.throttle import ShopThrottle
from segments.tags.models import TagAudit
from segments.tags.sync import shop_tags_sync
from tests.conftest import BROKER_URL
from tests.segments.engine.test_metrics_table import Mirror
from tests.segments.tags.conftest import TagStore

ROOT = Path(__file__).resolve().parents[3]
EVERYONE = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 0}}


@pytest.fixture
def store(installed_shop, devstore, settings):
    """An installed shop whose budget is shared through Redis, as between production workers."""
    settings.REDIS_URL = BROKER_URL
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 0           # the direct path: every tag is a throttled call
    redis.Redis.from_url(BROKER_URL).delete(f"shopseg:throttle:{installed_shop.pk}")
    domain = installed_shop.domain
    # The app here is Django's test client, which devstore cannot reach: deliveries are dropped.
    devstore.control("POST", "/faults", json={"shop": domain, "kind": "drop_webhooks", "params": {"rate": 1.0}})
    yield TagStore(devstore=devstore, shop=installed_shop, mirror=Mirror(installed_shop))
    devstore.control("POST", "/faults", json={"shop": domain, "kind": "drop_webhooks", "params": None})
    devstore.control("POST", f"/shops/{domain}/throttle", json={})
    ShopThrottle(installed_shop.pk, redis_url=BROKER_URL).reset()


@pytest.mark.django_db(transaction=True)
def test_reconciliation_and_a_large_tag_sync_together_are_never_throttled(store):
    # given a bucket holding about one request's worth (1,000 points, restored at 1,000 a second),
    # 300 customers changed since the watermark, and a segment all of them enter (3,000 points of tags)
    devstore, domain = store.devstore, store.shop.domain
    devstore.control("POST", f"/shops/{domain}/throttle", json={"maximum_available": 1000, "restore_rate": 1000})
    sids = store.customers(300)
    store.segment("everyone", EVERYONE)
    store.recompute()
    spans, reports, errors = {}, [], []

    def tag_sync() -> None:
        try:
            started = time.monotonic()
            reports.append(shop_tags_sync(shop_id=store.shop.pk, budget_seconds=60))
            spans["tags"] = (started, time.monotonic())
        except Exception as exc:     # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    # when reconciliation runs while the tag sync does (another worker)
    thread = threading.Thread(target=tag_sync)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    repaired = shop_reconcile(shop_id=store.shop.pk)
    spans["reconcile"] = (started, time.monotonic())
    thread.join(120)

    # then both finished their work, side by side, and Shopify never answered THROTTLED
    assert errors == [] and len(reports) == 1
    (report,) = reports
    assert report.stopped == "" and store.pending() == 0 and report.points >= 3000
    assert TagAudit.objects.filter(shop=store.shop).count() == 300
    assert all(store.tags(sid) == ["seg:everyone"] for sid in sids[::50])
    assert repaired >= 300
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), spans
    assert report.throttled == 0
    assert devstore.control("GET", f"/shops/{domain}/throttle")["throttled"] == 0


# -- one way -----------------------------------------------------------------------------------------
SENDER = ROOT / "segments" / "shops" / "graphql.py"
TOKENS = ROOT / "segments" / "shops" / "tokens.py"


def _production_modules():
    for package in ("segments", "webhooks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_every_graphql_call_goes_through_the_shop_sender():
    # A call of ShopClient.graphql, or a client of one's own, anywhere else would spend the shop's
    # bucket behind the shared budget's back.
    assert SENDER.exists() and TOKENS.exists() and len(list(_production_modules())) > 100
    offenders = []
    for path in _production_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "graphql" \
                    and path != SENDER:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .graphql(...)")
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else (
                node.name if isinstance(node, ast.alias) else None)
            if name in ("with_shop_client", "graphql_client", "ShopClient") and path not in (SENDER, TOKENS):
                if path.name == "admin_api.py" and name in ("graphql_client", "ShopClient"):
                    continue       # where the client is built from settings
                offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')} {name}")
    assert offenders == []
