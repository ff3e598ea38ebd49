"""The metrics table: every column against a plain-Python reference over the same mirror rows, full
and incremental, edge cases pinned, dirty marks, and devstore personas showing through."""
from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection

from segments.engine import metrics_table
from segments.engine.registry import RFM_GROUPS, TABLE_COLUMNS, rfm_group
from segments.metrics.models import CustomerMetrics, RfmGroup, ShopMetricsBreakpoints
from segments.metrics.refresh import customer_metrics_rebuild, customer_metrics_refresh
from segments.mirror.models import Checkout, Customer, LineItem, Order
from segments.mirror.orders import checkout_delete, checkouts_upsert, orders_upsert
from segments.mirror.records import CheckoutRecord, CustomerRecord, LineItemRecord, OrderRecord, RefundRecord
from segments.mirror.writer import customer_delete, customers_upsert
from segments.privacy.compliance import compliance_customer_redact, compliance_shop_redact
from segments.shops.models import Shop, ShopStatus

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
COLUMNS = (
    "orders_count", "total_spent", "aov", "first_order_at", "last_order_at", "largest_order", "spend_percentile",
    "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group", "discounted_orders", "full_price_orders",
    "refund_rate", "distinct_product_types", "abandoned_checkouts", "last_abandoned_at", "last_abandoned_value",
    "abandoned_not_purchased_since", "median_order_gap_days", "expedited_share", "discount_dependence",
    "premium_share", "mobile_share", "desktop_share", "pos_share", "top_source", "customer_created_at",
)
SHOP_RELATIVE = ("spend_percentile", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group", "premium_share")

RFM_PAIRS = [(r, f) for r in range(1, 6) for f in range(1, 6)]


def days(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


# -- building mirrors through the writer ---------------------------------------------------------
class Mirror:
    """Hand-built mirror rows for one shop, written with the mirror writer."""

    def __init__(self, shop: Shop):
        self.shop = shop
        self.next_order = 1000
        self.next_line = 1

    def customer(self, sid: int, created_days_ago: float = 400) -> int:
        customers_upsert(shop=self.shop, records=[CustomerRecord(sid, updated_at=days(created_days_ago),
                                                                 created_at=days(created_days_ago),
                                                                 email=f"c{sid}@example.com")])
        return Customer.objects.get(shop=self.shop, shopify_id=sid).pk

    def order(self, customer: int | None, days_ago: float, total: str = "50.00", *, lines=(("20.00", "Tea"),),
              discounts: str = "0", codes=(), refunded: str = "0", cancelled: bool = False, device: str = "desktop",
              speed: str = "standard", source: str = "web", email: str = "") -> int:
        self.next_order += 1
        sid = self.next_order
        items = []
        for price, product_type in lines:
            self.next_line += 1
            items.append(LineItemRecord(shopify_id=self.next_line, quantity=1, price=Decimal(price),
                                        product_type=product_type))
        refunds = [RefundRecord(shopify_id=sid, order_shopify_id=sid, created_at=days(days_ago),
                                amount=Decimal(refunded))] if Decimal(refunded) else []
        orders_upsert(shop=self.shop, records=[OrderRecord(
            shopify_id=sid, created_at=days(days_ago), updated_at=days(days_ago), customer_shopify_id=customer,
            email=email, total=Decimal(total), subtotal=Decimal(total), total_discounts=Decimal(discounts),
            total_refunded=Decimal(refunded), discount_codes=list(codes), cancelled_at=days(days_ago) if cancelled
            else None, device=device, shipping_speed=speed, source_name=source, line_items=items,
            refunds=refunds)])
        return sid

    def checkout(self, customer: int | None, days_ago: float, total: str = "80.00", token: str | None = None,
                 completed: bool = False, email: str = "") -> str:
        token = token or f"ck-{self.shop.pk}-{self.next_line}-{days_ago}"
        self.next_line += 1
        checkouts_upsert(shop=self.shop, records=[CheckoutRecord(
            token=token, created_at=days(days_ago), updated_at=days(days_ago), customer_shopify_id=customer,
            email=email, total=Decimal(total), completed_at=days(days_ago) if completed else None)])
        return token


@pytest.fixture
def shop():
    return Shop.objects.create(domain="metrics.myshopify.com", checkout_abandon_minutes=60)


@pytest.fixture
def other_shop():
    return Shop.objects.create(domain="metrics-other.myshopify.com")


def varied_mirror(shop: Shop) -> Mirror:
    """Customers covering every column's cases (sids 1-12), a guest, and a deleted customer."""
    m = Mirror(shop)
    for sid in range(1, 13):
        m.customer(sid, created_days_ago=500 - sid)
    # 1: a regular: 4 orders, mixed devices and sources, one discount code, one refund, one cancelled.
    m.order(1, 300, "100.00", lines=(("40.00", "Tea"), ("60.00", "Coffee")), device="mobile", source="web")
    m.order(1, 250, "80.00", codes=["SAVE15"], device="mobile", source="iphone", speed="expedited")
    m.order(1, 100, "120.00", refunded="30.00", lines=(("120.00", "Kitchen"),), device="desktop", source="web")
    m.order(1, 40, "60.00", device="unknown", source="web", lines=(("60.00", "Tea"),))
    m.order(1, 20, "500.00", cancelled=True, lines=(("500.00", "Jewelry"),))
    # 2: a bargain hunter: every order discounted (amount or code), all mobile.
    for i, ago in enumerate((200, 170, 140, 110, 80, 50)):
        m.order(2, ago, "30.00", discounts="5.00" if i % 2 else "0", codes=[] if i % 2 else ["TAKE5"],
                device="mobile", source="web", lines=(("35.00", "Beauty"),))
    # 3: one order, premium, pos; abandoned a checkout after it.
    m.order(3, 10, "300.00", lines=(("300.00", "Jewelry"),), device="pos", source="pos", speed="pickup")
    m.checkout(3, 5, "90.00")
    # 4: no orders; two abandoned checkouts (one deleted, one too recent), one completed.
    m.checkout(4, 30, "45.00")
    m.checkout(4, 12, "70.00")
    checkout_delete(shop=shop, token=m.checkout(4, 8, "999.00"))
    m.checkout(4, 0.01, "15.00")                                    # 14 minutes old: not abandoned yet
    m.checkout(4, 3, "60.00", completed=True)
    # 5: no orders, nothing at all.
    # 6: only cancelled orders.
    m.order(6, 60, "70.00", cancelled=True)
    # 7: fully refunded order, and an order on the same second as another (gap 0).
    m.order(7, 90, "40.00", refunded="40.00", device="tablet", source="")
    m.order(7, 90, "25.00", device="tablet", source="")
    m.order(7, 30, "25.00", device="desktop", source="")
    # 8: abandoned before its latest order (purchased since); two sources tied at 2 each.
    m.checkout(8, 70, "50.00")
    for ago, source in ((150, "web"), (120, "pos"), (90, "web"), (60, "pos")):
        m.order(8, ago, "45.00", source=source, device="desktop", speed="expedited")
    # 9, 10, 11: same spend and same order count (ties), different recency.
    for sid, ago in ((9, 15), (10, 15), (11, 400)):
        m.order(sid, ago, "50.00", lines=(("50.00", "Tea"),))
    # 12: free order (zero spend), and a blank product type.
    m.order(12, 35, "0.00", lines=(("0.00", ""),), device="unknown")
    # A guest order and a guest abandoned checkout: they count for nobody.
    m.order(None, 5, "1000.00", email="guest@example.com", lines=(("1000.00", "Jewelry"),))
    m.checkout(None, 5, "500.00", email="guest2@example.com")
    # 13: deleted after buying.
    m.customer(13)
    m.order(13, 5, "80.00")
    customer_delete(shop=shop, shopify_id=13)
    return m


# -- the reference --------------------------------------------------------------------------------
def nearest_rank(sorted_values: list, position: int):
    if not sorted_values:
        return None
    return sorted_values[-(-position * len(sorted_values) // 100) - 1]


def rank_against(value, population: list) -> tuple[float, int]:
    """(percentile, quintile score) of value among population, by the definitions in the module."""
    if not population:
        return 1.0, 1
    n = len(population)
    at_most = sum(1 for v in population if v <= value)
    below = sum(1 for v in population if v < value)
    return (100 * at_most // n) / 100, 1 + min(4, 5 * below // n)


def reference(shop: Shop, now: dt.datetime = NOW, ranked_among: dict | None = None,
              premium_price: Decimal | None | str = "current") -> dict[int, dict]:
    """Every column for every live customer, computed row by row in Python.

    `ranked_among` (customer pk -> row, as an earlier reference returned) ranks against that older
    population instead of the current one; `premium_price` likewise overrides the threshold.
    """
    if premium_price == "current":
        premium_price = nearest_rank(sorted(LineItem.objects.filter(shop=shop).values_list("price", flat=True)), 75)
    lines: dict[int, list[LineItem]] = {}
    for line in LineItem.objects.filter(shop=shop):
        lines.setdefault(line.order_id, []).append(line)
    cutoff = now - dt.timedelta(minutes=shop.checkout_abandon_minutes)
    rows: dict[int, dict] = {}
    for c in Customer.objects.filter(shop=shop, deleted_at__isnull=True):
        orders = sorted(Order.objects.filter(customer=c, cancelled_at__isnull=True), key=lambda o: (o.created_at, o.pk))
        abandoned = sorted(Checkout.objects.filter(customer=c, completed_at__isnull=True, deleted_at__isnull=True,
                                                   created_at__lte=cutoff), key=lambda k: (k.created_at, k.pk))
        n = len(orders)
        spent = sum((o.total - o.total_refunded for o in orders), Decimal(0))
        gross = sum((o.total for o in orders), Decimal(0))
        discounted = [o for o in orders if o.total_discounts > 0 or o.discount_codes]
        known = [o for o in orders if o.device != "unknown"]
        gaps = [(b.created_at - a.created_at).total_seconds() / 86400 for a, b in zip(orders, orders[1:])]
        sources = Counter(o.source_name for o in orders if o.source_name)
        types = {li.product_type for o in orders for li in lines.get(o.pk, []) if li.product_type}
        last_abandoned = abandoned[-1] if abandoned else None
        rows[c.pk] = {
            "orders_count": n,
            "total_spent": spent,
            "aov": (spent / n).quantize(Decimal("0.01"), ROUND_HALF_UP) if n else None,
            "first_order_at": orders[0].created_at if n else None,
            "last_order_at": orders[-1].created_at if n else None,
            "largest_order": max(o.total for o in orders) if n else None,
            "discounted_orders": len(discounted),
            "full_price_orders": n - len(discounted),
            "refund_rate": float(sum(o.total_refunded for o in orders) / gross) if gross > 0 else None,
            "distinct_product_types": len(types),
            "abandoned_checkouts": len(abandoned),
            "last_abandoned_at": last_abandoned.created_at if last_abandoned else None,
            "last_abandoned_value": last_abandoned.total if last_abandoned else None,
            "abandoned_not_purchased_since": bool(last_abandoned) and not any(
                o.created_at > last_abandoned.created_at for o in orders),
            "median_order_gap_days": statistics.median(gaps) if gaps else None,
            "expedited_share": sum(o.shipping_speed == "expedited" for o in orders) / n if n else None,
            "discount_dependence": float(sum(o.total - o.total_refunded for o in discounted) / spent)
            if spent > 0 else None,
            "premium_share": sum(any(premium_price is not None and li.price > premium_price
                                     for li in lines.get(o.pk, [])) for o in orders) / n if n else None,
            "mobile_share": sum(o.device == "mobile" for o in known) / len(known) if known else None,
            "desktop_share": sum(o.device == "desktop" for o in known) / len(known) if known else None,
            "pos_share": sum(o.device == "pos" for o in known) / len(known) if known else None,
            "top_source": min(sources, key=lambda s: (-sources[s], s)) if sources else None,
            "customer_created_at": c.created_at,
        }
    population = rows if ranked_among is None else ranked_among
    buyers = [r for r in population.values() if r["orders_count"]]
    for row in rows.values():
        if not row["orders_count"]:
            row.update(spend_percentile=None, rfm_recency=None, rfm_frequency=None, rfm_monetary=None, rfm_group=None)
            continue
        row["spend_percentile"], row["rfm_monetary"] = rank_against(row["total_spent"],
                                                                    [b["total_spent"] for b in buyers])
        _, row["rfm_recency"] = rank_against(row["last_order_at"], [b["last_order_at"] for b in buyers])
        _, row["rfm_frequency"] = rank_against(row["orders_count"], [b["orders_count"] for b in buyers])
        row["rfm_group"] = rfm_group(row["rfm_recency"], row["rfm_frequency"])
    return rows


def stored(shop: Shop) -> dict[int, dict]:
    return {r["customer_id"]: {c: r[c] for c in COLUMNS}
            for r in CustomerMetrics.objects.filter(shop=shop).values("customer_id", *COLUMNS)}


def assert_rows_equal(actual: dict[int, dict], expected: dict[int, dict], columns=COLUMNS) -> None:
    assert actual.keys() == expected.keys()
    for pk in expected:
        for column in columns:
            want, got = expected[pk][column], actual[pk][column]
            if isinstance(want, float) and got is not None:
                assert got == pytest.approx(want, abs=1e-9), (pk, column)
            else:
                assert got == want, (pk, column, got, want)


# -- full rebuild ---------------------------------------------------------------------------------
def test_the_table_has_the_columns_the_registry_reads():
    fields = {f.column for f in CustomerMetrics._meta.concrete_fields} - {"customer_id", "shop_id", "computed_at"}
    assert fields == set(TABLE_COLUMNS) == set(COLUMNS)


def test_every_column_of_every_customer_matches_the_reference(shop):
    varied_mirror(shop)

    written = customer_metrics_rebuild(shop=shop, now=NOW)

    expected = reference(shop)
    assert written == len(expected) == 12
    assert_rows_equal(stored(shop), expected)
    assert set(CustomerMetrics.objects.filter(shop=shop).values_list("computed_at", flat=True)) == {NOW}


def pinned(shop: Shop, sid: int) -> CustomerMetrics:
    return CustomerMetrics.objects.get(customer__shop=shop, customer__shopify_id=sid)


def test_customers_without_orders_have_zero_counts_and_null_order_values(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)

    for sid in (5, 6):   # 5 never ordered; 6 only has a cancelled order
        row = pinned(shop, sid)
        assert (row.orders_count, row.total_spent, row.discounted_orders, row.full_price_orders,
                row.distinct_product_types, row.abandoned_checkouts, row.abandoned_not_purchased_since) == (
            0, Decimal("0.00"), 0, 0, 0, 0, False)
        assert all(getattr(row, c) is None for c in (
            "aov", "first_order_at", "last_order_at", "largest_order", "spend_percentile", "rfm_recency",
            "rfm_frequency", "rfm_monetary", "rfm_group", "refund_rate", "last_abandoned_at", "last_abandoned_value",
            "median_order_gap_days", "expedited_share", "discount_dependence", "premium_share", "mobile_share",
            "desktop_share", "pos_share", "top_source"))
        assert row.customer_created_at == days(500 - sid)


def test_cancelled_and_guest_orders_count_for_nobody(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)

    regular = pinned(shop, 1)   # its 500.00 order was cancelled
    assert (regular.orders_count, regular.largest_order, regular.last_order_at) == (4, Decimal("120.00"), days(40))
    assert regular.distinct_product_types == 3          # Tea, Coffee, Kitchen; not the cancelled Jewelry
    # The 1000.00 guest order is in no one's spend, but the shop's top spender is still the regular.
    assert not CustomerMetrics.objects.filter(shop=shop, total_spent__gte=1000).exists()
    assert regular.spend_percentile == 1.0 and regular.rfm_monetary == 5


def test_refunds_come_off_spend_and_make_the_refund_rate(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)

    refunded = pinned(shop, 7)   # 40.00 refunded in full, 25.00 and 25.00 kept
    assert (refunded.total_spent, refunded.aov, refunded.largest_order) == (
        Decimal("50.00"), Decimal("16.67"), Decimal("40.00"))
    assert refunded.refund_rate == pytest.approx(40 / 90)
    assert refunded.median_order_gap_days == pytest.approx(30.0)   # gaps 0 and 60: even count, mean of both
    free = pinned(shop, 12)
    assert (free.total_spent, free.refund_rate, free.discount_dependence, free.distinct_product_types) == (
        Decimal("0.00"), None, None, 0)


def test_ties_share_the_score_of_the_quintile_their_group_starts_in(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)

    # Nine buyers spend 0, 50 x4, 180 x2, 300, 330 and have 1 x5, 3, 4 x2, 6 orders.
    by_sid = {sid: pinned(shop, sid) for sid in (1, 2, 3, 7, 8, 9, 10, 11, 12)}
    assert {sid: (m.rfm_monetary, m.spend_percentile) for sid, m in by_sid.items()} == {
        12: (1, 0.11), 7: (1, 0.55), 9: (1, 0.55), 10: (1, 0.55), 11: (1, 0.55),
        2: (3, 0.77), 8: (3, 0.77), 3: (4, 0.88), 1: (5, 1.0)}
    assert {sid: m.rfm_frequency for sid, m in by_sid.items()} == {
        3: 1, 9: 1, 10: 1, 11: 1, 12: 1, 7: 3, 1: 4, 8: 4, 2: 5}
    assert by_sid[9].rfm_recency == by_sid[10].rfm_recency == 4     # same day, same score
    assert (by_sid[9].rfm_group, by_sid[11].rfm_group) == ("promising", "lost")


def test_the_rfm_group_of_every_score_pair_is_the_registrys():
    values = ", ".join(f"({r}, {f})" for r, f in RFM_PAIRS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT column1, column2, {metrics_table.rfm_group_case('column1', 'column2')} "
                       f"FROM (VALUES {values}) AS v")
        assert {(r, f): group for r, f, group in cursor.fetchall()} == {(r, f): rfm_group(r, f) for r, f in RFM_PAIRS}
    # The standard map's cells, and its gap (R3 F1-2) in needs_attention.
    assert [rfm_group(r, f) for r, f in ((5, 4), (4, 5), (4, 2), (5, 1), (4, 1), (3, 3), (3, 1), (3, 2), (2, 4),
                                         (1, 5), (2, 1), (1, 2))] == [
        "champions", "loyal", "potential_loyalist", "new", "promising", "needs_attention", "needs_attention",
        "needs_attention", "at_risk", "cannot_lose", "hibernating", "lost"]
    assert {choice for choice, _ in RfmGroup.choices} == {g.name for g in RFM_GROUPS}


def test_checkouts_are_abandoned_once_the_shops_delay_has_passed(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert (pinned(shop, 4).abandoned_checkouts, pinned(shop, 4).last_abandoned_value) == (2, Decimal("70.00"))

    later = NOW + dt.timedelta(minutes=50)   # the 14-minute-old checkout is now older than the shop's 60 minutes
    customer_metrics_rebuild(shop=shop, now=later)

    row = pinned(shop, 4)
    assert (row.abandoned_checkouts, row.last_abandoned_value, row.last_abandoned_at) == (
        3, Decimal("15.00"), days(0.01))
    assert_rows_equal(stored(shop), reference(shop, now=later))
    assert pinned(shop, 8).abandoned_not_purchased_since is False    # ordered after abandoning
    assert pinned(shop, 3).abandoned_not_purchased_since is True


def test_rebuilding_one_shop_leaves_other_shops_alone(shop, other_shop):
    varied_mirror(other_shop)
    customer_metrics_rebuild(shop=other_shop, now=NOW)
    before = stored(other_shop)
    breakpoints = list(ShopMetricsBreakpoints.objects.filter(shop=other_shop).order_by("position").values())
    varied_mirror(shop)
    Mirror(shop).order(9, 1, "5000.00")

    customer_metrics_rebuild(shop=shop, now=NOW + dt.timedelta(hours=1))
    customer_metrics_refresh(shop=shop, customer_ids=list(before), now=NOW + dt.timedelta(hours=1))

    assert stored(other_shop) == before
    assert list(ShopMetricsBreakpoints.objects.filter(shop=other_shop).order_by("position").values()) == breakpoints
    assert set(CustomerMetrics.objects.filter(shop=other_shop).values_list("computed_at", flat=True)) == {NOW}
    assert_rows_equal(stored(shop), reference(shop, now=NOW + dt.timedelta(hours=1)))


def test_privacy_erasures_take_the_metrics_along(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    regular = Customer.objects.get(shop=shop, shopify_id=1).pk

    compliance_customer_redact(shop_domain=shop.domain, payload={
        "customer": {"id": 1, "email": "c1@example.com"}, "orders_to_redact": []})
    assert not CustomerMetrics.objects.filter(customer_id=regular).exists()
    assert CustomerMetrics.objects.filter(shop=shop).count() == 11
    connection.check_constraints()   # the deferred foreign keys, checked now rather than at a commit

    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.UNINSTALLED)
    compliance_shop_redact(shop_domain=shop.domain, payload={})
    assert not CustomerMetrics.objects.filter(shop_id=shop.pk).exists()
    assert not ShopMetricsBreakpoints.objects.filter(shop_id=shop.pk).exists()
    connection.check_constraints()
