"""The nightly fit's one pass over a shop's orders reads what the per-purpose reads define: the
histories now, the histories as they stood at the quality cut (of customers who had bought before
its day) and each of those customers' purchase days since, down to orders on the cut's own day on
both sides of it, local days in the shop's time zone, refunds, cancelled, guest and deleted
customers' orders."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.db import connection

from segments.mirror.models import Customer, Order
from segments.predictions.histories import Histories, histories, shop_histories
from segments.shops.models import Shop
from tests.segments.predictions.test_service import NOW, place, simulated

pytestmark = pytest.mark.django_db

# Midday in New York, so a few hours either side of the cut stay on its local day.
UNTIL = NOW.replace(hour=17, minute=0, second=0)
CUT = UNTIL - dt.timedelta(days=90)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(domain="histories.myshopify.com", iana_timezone="America/New_York")


def days_since(shop: Shop, h: Histories) -> np.ndarray:
    """The definition: each customer's distinct local days with an order in [CUT, UNTIL), not cancelled."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id, count(DISTINCT (created_at AT TIME ZONE %s)::date) FROM segments_order "
                       "WHERE shop_id = %s AND cancelled_at IS NULL AND created_at >= %s AND created_at < %s GROUP BY 1",
                       [shop.iana_timezone, shop.pk, CUT, UNTIL])
        found = dict(cursor.fetchall())
    return np.array([found.get(pk, 0) for pk in h.customer_ids.tolist()], dtype=float)


def assert_same(read: Histories, defined: Histories) -> None:
    for name in ("customer_ids", "x", "t_x", "T", "m_x"):
        assert getattr(read, name).dtype == getattr(defined, name).dtype
        assert np.array_equal(getattr(read, name), getattr(defined, name)), name


def test_one_pass_reads_the_histories_now_at_the_cut_and_the_days_since(shop):
    new_york = ZoneInfo("America/New_York")
    late = dt.datetime.combine(CUT.astimezone(new_york).date() - dt.timedelta(days=40), dt.time(23, 30), new_york)
    place(shop, simulated(80) + [
        (901, CUT - dt.timedelta(days=200), "40.00"), (901, CUT - dt.timedelta(days=30), "12.50"),
        (901, CUT - dt.timedelta(days=10), "500.00"),                             # cancelled below
        (901, CUT - 2 * HOUR, "10.00"), (901, CUT + 2 * HOUR, "99.00"),        # the cut's day, both sides
        (901, CUT + dt.timedelta(days=20), "33.33"), (901, CUT + dt.timedelta(days=20, hours=1), "0.01"),
        (902, CUT - HOUR, "25.00"), (902, CUT + dt.timedelta(days=3), "25.00"),   # first bought on the cut's day
        (903, CUT + HOUR, "70.00"), (903, CUT + dt.timedelta(days=9), "70.00"),   # only since the cut
        (904, CUT - dt.timedelta(days=5), "15.00"),                               # once, before the cut
        (905, CUT - dt.timedelta(days=50), "60.00"), (905, CUT - dt.timedelta(days=10), "60.00"),
        (906, late, "5.00"), (906, late + HOUR, "6.00"),                          # 23:30 and 00:30 local
        (906, UNTIL - HOUR, "7.00"), (906, UNTIL + HOUR, "8.00"),                 # the last after `until`
        (907, CUT - dt.timedelta(days=60), "80.00"), (907, CUT - dt.timedelta(days=2), "80.00"),
    ])
    Order.objects.filter(shop=shop, customer__shopify_id=901, total=Decimal("500.00")).update(cancelled_at=CUT)
    Order.objects.filter(shop=shop, customer__shopify_id=901, total=Decimal("33.33")).update(
        total_refunded=Decimal("3.33"))
    Order.objects.filter(shop=shop, customer__shopify_id=905, total=Decimal("60.00")).update(customer=None)  # guest
    Customer.objects.filter(shop=shop, shopify_id=907).update(deleted_at=UNTIL)

    read = shop_histories(shop=shop, until=UNTIL, cut=CUT)

    assert_same(read.now, histories(shop=shop, until=UNTIL))
    at_cut = histories(shop=shop, until=CUT, first_before=CUT)
    assert_same(read.at_cut, at_cut)
    assert np.array_equal(read.since_cut, days_since(shop, at_cut))
    pk = dict(Customer.objects.filter(shop=shop).values_list("shopify_id", "pk"))
    cut_ids = read.at_cut.customer_ids.tolist()
    assert pk[901] in cut_ids and pk[904] in cut_ids and pk[906] in cut_ids
    assert pk[902] not in cut_ids and pk[903] not in cut_ids            # no purchase day before the cut's
    assert pk[905] not in read.now.customer_ids.tolist() and pk[907] not in read.now.customer_ids.tolist()
    one = cut_ids.index(pk[901])
    assert (read.at_cut.x[one], read.at_cut.m_x[one], read.since_cut[one]) == (2, 11.25, 2)   # 12.50 and 10.00
    assert read.since_cut.sum() > 0 and len(read.at_cut) < len(read.now)


def test_a_shop_without_orders_reads_nothing(shop):
    read = shop_histories(shop=shop, until=UNTIL, cut=CUT)
    assert len(read.now) == len(read.at_cut) == len(read.since_cut) == 0
    assert read.now.customer_ids.dtype == np.int64 and read.now.x.dtype == float
