"""Fixtures for measurement tests: a shop's mirror written through the mirror writer at chosen
times, segments created and computed through the real services."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from segments.membership.definitions import segment_create
from segments.membership.models import Segment
from segments.mirror.models import Customer
from segments.mirror.records import CustomerRecord, LineItemRecord, OrderRecord
from segments.mirror.writer import customers_upsert
from segments.mirror.orders import orders_upsert
from segments.shops.models import Shop


class Store:
    """A shop's mirror, written at explicit times (orders placed when the test says)."""

    def __init__(self, shop: Shop):
        self.shop = shop
        self.zone = ZoneInfo(shop.iana_timezone)
        self.next_order = 5000

    def customers(self, sids, created: dt.datetime) -> dict[int, int]:
        customers_upsert(shop=self.shop, records=[CustomerRecord(sid, updated_at=created, created_at=created,
                                                                 email=f"m{sid}@example.com") for sid in sids])
        return dict(Customer.objects.filter(shop=self.shop, shopify_id__in=list(sids)).values_list("shopify_id", "pk"))

    def order(self, sid: int | None, at: dt.datetime, total: str = "50.00", *, refunded: str = "0",
              cancelled: bool = False, codes: tuple[str, ...] = (), lines: tuple = ()) -> int:
        """`lines`: (variant id, quantity, price) of its line items; none by default."""
        self.next_order += 1
        items = [LineItemRecord(shopify_id=self.next_order * 100 + k, variant_id=variant, quantity=quantity,
                                price=Decimal(price)) for k, (variant, quantity, price) in enumerate(lines)]
        orders_upsert(shop=self.shop, records=[OrderRecord(
            shopify_id=self.next_order, created_at=at, updated_at=at, customer_shopify_id=sid,
            email="" if sid else f"guest{self.next_order}@example.com", total=Decimal(total), subtotal=Decimal(total),
            total_refunded=Decimal(refunded), cancelled_at=at if cancelled else None, discount_codes=list(codes),
            line_items=items or None)])
        return self.next_order

    def local(self, day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=self.zone)


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(domain="measure.myshopify.com", iana_timezone="America/New_York")


@pytest.fixture
def other_shop() -> Shop:
    return Shop.objects.create(domain="measure-other.myshopify.com", iana_timezone="UTC")


@pytest.fixture
def store(shop) -> Store:
    return Store(shop)


def make_segment(shop: Shop, name: str, rules: dict, **settings) -> Segment:
    return segment_create(shop=shop, name=name, rules=rules, **settings)
