"""`mirror_status`, the operator's view of a shop: a metrics rebuild that has not succeeded since the
backfill shows as stale ranks, and the drift since the last ranking is reported."""
from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command

from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import ShopSync
from segments.shops.models import Shop
from tests.segments.engine.test_metrics_table import NOW, Mirror

pytestmark = pytest.mark.django_db


def status(shop) -> dict:
    out = StringIO()
    call_command("mirror_status", shop=shop.domain, stdout=out)
    return json.loads(out.getvalue())[0]["metrics"]


def test_ranks_older_than_the_backfill_show_as_stale_until_a_rebuild_succeeds():
    shop = Shop.objects.create(domain="status.myshopify.com")
    m = Mirror(shop)
    m.customer(1)
    customer_metrics_rebuild(shop=shop, now=NOW)            # the install's rebuild, before any order
    m.order(1, 3, "40.00")
    ShopSync.objects.create(shop=shop, backfill_status="done", backfill_finished_at=NOW + dt.timedelta(minutes=5))

    stale = status(shop)
    assert stale["stale"] is True and stale["ranked_at"] == NOW.isoformat()

    customer_metrics_rebuild(shop=shop, now=NOW + dt.timedelta(minutes=6))   # the rebuild after the backfill
    fresh = status(shop)
    assert fresh == {"ranked_at": (NOW + dt.timedelta(minutes=6)).isoformat(), "buyers": 1,
                     "changed_since_ranked": 0, "stale": False}
