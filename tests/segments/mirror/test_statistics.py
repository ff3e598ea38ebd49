"""ANALYZE after bulk writes: the metrics table is analyzed when a rebuild rewrote a tenth of it or
more, or it was never analyzed, and left to autovacuum otherwise."""
from __future__ import annotations

import pytest
from django.db import connection

from segments.metrics import refresh as metrics_service
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer
from segments.mirror.statistics import STALE_FRACTION, table_analyze_if_rewritten
from segments.shops.models import Shop
from tests.segments.engine.test_metrics_table import NOW, Mirror

pytestmark = pytest.mark.django_db
METRICS = "segments_customermetrics"


def reltuples() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [METRICS])
        return cursor.fetchone()[0]


def shop_with_customers(n: int) -> Shop:
    shop = Shop.objects.create(domain=f"stats{n}.myshopify.com")
    m = Mirror(shop)
    for sid in range(1, n + 1):
        m.customer(sid)
    m.order(1, 10, "20.00")
    return shop


def test_a_rebuild_that_rewrote_much_of_the_table_analyzes_it():
    # Given a shop of 40 customers and a metrics table the planner thinks empty
    shop = shop_with_customers(40)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {METRICS}")
    assert reltuples() < 40

    # When its metrics are rebuilt
    assert customer_metrics_rebuild(shop=shop, now=NOW) == 40

    # Then the table was analyzed: the planner knows its rows
    assert reltuples() == Customer.objects.count() == 40


def test_a_small_rewrite_of_a_large_table_is_left_to_autovacuum():
    # Given a metrics table analyzed with 40 rows
    customer_metrics_rebuild(shop=shop_with_customers(40), now=NOW)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {METRICS}")
    assert reltuples() == 40

    # When a write of fewer than a tenth of its rows is reported, then of a tenth
    small = table_analyze_if_rewritten(table=METRICS, written=int(40 * STALE_FRACTION) - 1)
    large = table_analyze_if_rewritten(table=METRICS, written=int(40 * STALE_FRACTION))

    # Then only the second analyzes
    assert (small, large) == (False, True)


def test_the_rebuild_reports_what_it_wrote(monkeypatch):
    # Given a shop of 12 customers
    reported = []
    monkeypatch.setattr(metrics_service, "table_analyze_if_rewritten",
                        lambda *, table, written: reported.append((table, written)) or True)
    shop = shop_with_customers(12)

    # When its metrics are rebuilt
    customer_metrics_rebuild(shop=shop, now=NOW)

    # Then the rows written are what decides the ANALYZE
    assert reported == [(METRICS, 12)]
