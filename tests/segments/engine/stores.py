"""Small stores for the segment-engine tests: a hand-building helper over the ORM, and hypothesis
strategies for random stores (the spec dataclasses below) with a writer that turns one into a Shop.

Rows are written with the ORM directly (not the mirror writer), so a store can hold anything the
mirror could: deleted customers and checkouts, customers without a creation time, guest orders.
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from segments.mirror.models import Cart, Checkout, Customer, LineItem, Order
from segments.mirror.order_costs import order_costs_refresh
from segments.storefront.models import Visitor, VisitorDay
from segments.shops.models import Shop

_domains = itertools.count(1)
_ids = itertools.count(10_000)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def local(tz: str, *args: int) -> dt.datetime:
    """A wall-clock time in `tz`, as an aware UTC datetime."""
    return dt.datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Line:
    price: str = "20.00"
    product_type: str = ""
    vendor: str = ""
    product_id: int | None = None


class Store:
    """One new shop and ORM helpers writing its mirror rows."""

    def __init__(self, *, tz: str = "UTC", abandon_minutes: int = 60) -> None:
        self.shop = Shop.objects.create(domain=f"ref{next(_domains)}-{next(_ids)}.myshopify.com", iana_timezone=tz,
                                        checkout_abandon_minutes=abandon_minutes)

    def customer(self, *, created_at: dt.datetime | None = None, tags=(), email_marketing: str = "unknown",
                 sms_marketing: str = "unknown", deleted_at: dt.datetime | None = None) -> Customer:
        return Customer.objects.create(shop=self.shop, shopify_id=next(_ids), created_at=created_at,
                                       updated_at=created_at, tags=list(tags), email_marketing=email_marketing,
                                       sms_marketing=sms_marketing, deleted_at=deleted_at)

    def order(self, customer: Customer | None, at: dt.datetime, total: str = "50.00", *, lines=(Line(),),
              discounts: str = "0", codes=(), refunded: str = "0", cancelled: bool = False,
              device: str = "desktop", source: str = "web", speed: str = "standard") -> Order:
        order = Order.objects.create(
            shop=self.shop, shopify_id=next(_ids), customer=customer, created_at=at, updated_at=at,
            cancelled_at=at if cancelled else None, total=Decimal(total), subtotal=Decimal(total),
            total_discounts=Decimal(discounts), total_refunded=Decimal(refunded), discount_codes=list(codes),
            device=device, source_name=source, shipping_speed=speed)
        LineItem.objects.bulk_create([
            LineItem(shop=self.shop, order=order, shopify_id=next(_ids), price=Decimal(line.price),
                     product_type=line.product_type, vendor=line.vendor, product_id=line.product_id)
            for line in lines])
        order_costs_refresh(shop=self.shop)
        return order

    def checkout(self, customer: Customer | None, at: dt.datetime, total: str = "80.00", *, completed: bool = False,
                 deleted: bool = False, cart_token: str = "") -> Checkout:
        return Checkout.objects.create(
            shop=self.shop, token=f"ck{next(_ids)}", customer=customer, created_at=at, updated_at=at,
            total=Decimal(total), completed_at=at if completed else None, deleted_at=at if deleted else None,
            cart_token=cart_token)

    def cart(self, token: str, created_at: dt.datetime, updated_at: dt.datetime | None = None) -> Cart:
        return Cart.objects.create(shop=self.shop, token=token, created_at=created_at, updated_at=updated_at)


# -- random stores ----------------------------------------------------------------------------------

TIMEZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Auckland")
PRODUCT_TYPES = ("Coffee", "Tea", "Mugs", "coffee", "")
VENDORS = ("Acme", "Bean Co", "acme", "")
PRODUCT_IDS = (101, 102, 103, 104)
SOURCES = ("web", "pos", "iphone", "android", "shopify_draft_order", "580111", "")
DEVICES = ("desktop", "mobile", "tablet", "pos", "unknown")
SPEEDS = ("standard", "expedited", "pickup", "none")
MARKETING = ("subscribed", "not_subscribed", "unsubscribed", "pending", "redacted", "invalid", "unknown")
TAGS = ("vip", "VIP", " Wholesale ", "wholesale", "winter", "seg:vip", "SEG:winter", "seg:abc")
PRICES = ("0.00", "4.99", "12.50", "20.00", "35.00", "60.00", "120.00")
MONEY = ("0.00", "9.99", "10.00", "25.50", "50.00", "75.25", "100.00", "250.00")


@dataclass(frozen=True)
class When:
    """A moment relative to `now` in the shop's time: `days_ago` local days before today (negative:
    ahead), `second` seconds after that day's local midnight."""

    days_ago: int
    second: int

    def at(self, now: dt.datetime, tz: str) -> dt.datetime:
        zone = ZoneInfo(tz)
        day = now.astimezone(zone).date() - dt.timedelta(days=self.days_ago)
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
        return midnight + dt.timedelta(seconds=self.second)


@dataclass(frozen=True)
class Ago:
    """A moment `seconds` before now (negative: after), for exact edges: now itself, the abandon
    delay, two rows on the same second."""

    seconds: int

    def at(self, now: dt.datetime, tz: str) -> dt.datetime:
        return now - dt.timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class LineSpec:
    price: str
    product_type: str
    vendor: str
    product_id: int | None


@dataclass(frozen=True)
class OrderSpec:
    when: When | Ago
    total: str
    discounts: str
    codes: tuple[str, ...]
    refunded_share: int        # percent of the total refunded
    cancelled: bool
    device: str
    source: str
    speed: str
    lines: tuple[LineSpec, ...]


@dataclass(frozen=True)
class CheckoutSpec:
    when: When | Ago
    total: str
    state: str                 # "open" | "completed" | "deleted"
    cart: int | None           # index into the store's carts, or None for no cart token
    minutes_ago: int | None    # when set: created this many minutes before now instead of `when`


@dataclass(frozen=True)
class CartSpec:
    created: When | Ago
    updated: When | Ago | None


@dataclass(frozen=True)
class VisitSpec:
    """A day of the customer's browsing on one of two browsers: its first event, how long after it the
    last came, its counts, where it arrived from and the theme's custom events."""
    first: When | Ago
    browser: int               # 0 or 1: a customer may browse on two devices
    counts: tuple[int, ...]    # the rollup's counted columns, in VISIT_COUNTS order
    lasted: int = 0            # seconds from the first event to the last
    texts: tuple[str, ...] = ("",) * 6    # in VISIT_TEXTS order
    custom: tuple[tuple[str, int], ...] = ()


VISIT_COUNTS = ("sessions", "product_views", "collection_views", "searches", "high_intent_searches",
                "add_to_carts", "cart_removals", "checkouts_started", "checkouts_completed", "buying_sessions")
VISIT_TEXTS = ("landing_path", "last_landing_path", "referrer_host", "utm_source", "utm_medium", "utm_campaign")
# Few values, so that days share them and ties between days of the same first event occur.
VISIT_VOCABULARY = {
    "landing_path": ("/", "/collections/sale", "/products/mug", ""), "last_landing_path": ("/", "/search", ""),
    "referrer_host": ("www.google.com", "t.co", ""), "utm_source": ("google", "newsletter", ""),
    "utm_medium": ("cpc", "email", ""), "utm_campaign": ("spring", "Spring", "bfcm", ""),
}
CUSTOM_EVENTS = ("app:size_finder", "app:video_played")


@dataclass(frozen=True)
class CustomerSpec:
    created: When | Ago | None
    tags: tuple[str, ...]
    email_marketing: str
    sms_marketing: str
    deleted: bool
    orders: tuple[OrderSpec, ...]
    checkouts: tuple[CheckoutSpec, ...]
    visits: tuple[VisitSpec, ...] = ()


@dataclass(frozen=True)
class StoreSpec:
    tz: str
    abandon_minutes: int
    customers: tuple[CustomerSpec, ...]
    guest_orders: tuple[OrderSpec, ...]
    carts: tuple[CartSpec, ...] = field(default=())


# Days ago: mostly anywhere in about three years, often the last few days (window edges), rarely ahead.
days_ago = st.one_of(st.integers(0, 1100), st.integers(0, 10), st.integers(-2, -1))
# Seconds after local midnight: anywhere, or on a boundary (midnight, a second before the next one).
second_of_day = st.one_of(st.integers(0, 86_399), st.sampled_from((0, 1, 86_399, 84_600, 43_200)))
whens = st.one_of(
    st.builds(When, days_ago=days_ago, second=second_of_day), st.builds(When, days_ago=days_ago, second=second_of_day),
    st.builds(Ago, seconds=st.sampled_from((0, 1, -1, 1800, 3600, 7200, 86_400, 30 * 86_400))))

lines = st.builds(LineSpec, price=st.sampled_from(PRICES), product_type=st.sampled_from(PRODUCT_TYPES),
                  vendor=st.sampled_from(VENDORS), product_id=st.one_of(st.none(), st.sampled_from(PRODUCT_IDS)))
orders = st.builds(
    OrderSpec, when=whens, total=st.sampled_from(MONEY),
    discounts=st.sampled_from(("0", "0", "0", "5.00", "0.01")),
    codes=st.sampled_from(((), (), ("SAVE10",), ("A", "B"))),
    refunded_share=st.sampled_from((0, 0, 0, 50, 100, 30)), cancelled=st.sampled_from((False,) * 4 + (True,)),
    device=st.sampled_from(DEVICES), source=st.sampled_from(SOURCES), speed=st.sampled_from(SPEEDS),
    lines=st.lists(lines, min_size=1, max_size=3).map(tuple))


def checkouts(n_carts: int):
    return st.builds(
        CheckoutSpec, when=whens, total=st.sampled_from(MONEY),
        state=st.sampled_from(("open", "open", "completed", "deleted")),
        cart=st.none() if n_carts == 0 else st.one_of(st.none(), st.integers(0, n_carts - 1)),
        minutes_ago=st.one_of(st.none(), st.none(), st.integers(0, 150), st.sampled_from((30, 60, 120))))


visits = st.builds(VisitSpec, first=whens, browser=st.integers(0, 1),
                   counts=st.tuples(*[st.integers(0, 4)] * len(VISIT_COUNTS)),
                   lasted=st.sampled_from((0, 60, 1800, 7200)),
                   texts=st.tuples(*[st.sampled_from(VISIT_VOCABULARY[name]) for name in VISIT_TEXTS]),
                   custom=st.lists(st.tuples(st.sampled_from(CUSTOM_EVENTS), st.integers(1, 3)), max_size=2,
                                   unique_by=lambda pair: pair[0]).map(tuple))


def _with_twin(days: list[VisitSpec]) -> st.SearchStrategy[tuple[VisitSpec, ...]]:
    """The days, sometimes with a day on the other browser that began at the same instant as the
    first (a tie the metrics that pick one day's value must break the same way everywhere)."""
    if not days:
        return st.just(())
    twins = st.builds(lambda texts: VisitSpec(first=days[0].first, browser=1 - days[0].browser,
                                              counts=days[0].counts, texts=texts),
                      st.tuples(*[st.sampled_from(VISIT_VOCABULARY[name]) for name in VISIT_TEXTS]))
    return st.one_of(st.just(tuple(days)), twins.map(lambda twin: (*days, twin)))


@st.composite
def stores(draw, max_customers: int = 12, max_orders: int = 8) -> StoreSpec:
    tz = draw(st.sampled_from(TIMEZONES))
    carts = tuple(draw(st.lists(st.builds(CartSpec, created=whens, updated=st.one_of(st.none(), whens)),
                                max_size=4)))
    customers = draw(st.lists(st.builds(
        CustomerSpec, created=st.one_of(whens, whens, st.none()),
        tags=st.lists(st.sampled_from(TAGS), max_size=3, unique=True).map(tuple),
        email_marketing=st.sampled_from(MARKETING), sms_marketing=st.sampled_from(MARKETING),
        deleted=st.sampled_from((False,) * 9 + (True,)),
        orders=st.lists(orders, max_size=max_orders).map(tuple),
        checkouts=st.lists(checkouts(len(carts)), max_size=3).map(tuple),
        visits=st.lists(visits, max_size=4).flatmap(_with_twin)),
        min_size=1, max_size=max_customers))
    guests = tuple(draw(st.lists(orders, max_size=2)))
    return StoreSpec(tz=tz, abandon_minutes=draw(st.sampled_from((60, 30, 120))), customers=tuple(customers),
                     guest_orders=guests, carts=carts)


def build(spec: StoreSpec, now: dt.datetime) -> Shop:
    """Write the store into a new Shop; returns it."""
    store = Store(tz=spec.tz, abandon_minutes=spec.abandon_minutes)
    shop, tz = store.shop, spec.tz
    # The same tokens in every shop: a shop's checkouts must never reach another shop's carts.
    cart_tokens = [f"cart{i}" for i in range(len(spec.carts))]
    Cart.objects.bulk_create([
        Cart(shop=shop, token=token, created_at=cart.created.at(now, tz),
             updated_at=cart.updated.at(now, tz) if cart.updated else None)
        for token, cart in zip(cart_tokens, spec.carts)])
    customers = Customer.objects.bulk_create([
        Customer(shop=shop, shopify_id=next(_ids), created_at=c.created.at(now, tz) if c.created else None,
                 updated_at=now, tags=list(c.tags), email_marketing=c.email_marketing,
                 sms_marketing=c.sms_marketing, deleted_at=now if c.deleted else None)
        for c in spec.customers])
    order_rows: list[Order] = []
    line_specs: list[tuple[LineSpec, ...]] = []
    checkout_rows: list[Checkout] = []
    owned = [(customer, c.orders) for customer, c in zip(customers, spec.customers)] + [(None, spec.guest_orders)]
    for customer, specs in owned:
        for o in specs:
            at = o.when.at(now, tz)
            total = Decimal(o.total)
            order_rows.append(Order(
                shop=shop, shopify_id=next(_ids), customer=customer, created_at=at, updated_at=at,
                cancelled_at=at if o.cancelled else None, total=total, subtotal=total,
                total_discounts=Decimal(o.discounts), total_refunded=(total * o.refunded_share / 100).quantize(
                    Decimal("0.01")), discount_codes=list(o.codes), device=o.device, source_name=o.source,
                shipping_speed=o.speed))
            line_specs.append(o.lines)
    for customer, c in zip(customers, spec.customers):
        for k in c.checkouts:
            at = now - dt.timedelta(minutes=k.minutes_ago) if k.minutes_ago is not None else k.when.at(now, tz)
            checkout_rows.append(Checkout(
                shop=shop, token=f"ck{next(_ids)}", customer=customer, created_at=at, updated_at=at,
                total=Decimal(k.total), completed_at=at if k.state == "completed" else None,
                deleted_at=at if k.state == "deleted" else None,
                cart_token=cart_tokens[k.cart] if k.cart is not None else ""))
    Order.objects.bulk_create(order_rows)
    LineItem.objects.bulk_create([
        LineItem(shop=shop, order=order, shopify_id=next(_ids), price=Decimal(line.price),
                 product_type=line.product_type, vendor=line.vendor, product_id=line.product_id)
        for order, specs in zip(order_rows, line_specs) for line in specs])
    order_costs_refresh(shop=shop)
    Checkout.objects.bulk_create(checkout_rows)
    _browse(shop, tz, now, customers, spec)
    return shop


def _browse(shop: Shop, tz: str, now: dt.datetime, customers: list[Customer], spec: StoreSpec) -> None:
    """Each customer's browsers and their days (one row per browser and local day, as the rollup
    keeps them), and a browser of nobody's with the same days, which no customer may count."""
    zone = ZoneInfo(tz)
    for index, (customer, c) in enumerate(zip(customers, spec.customers)):
        browsers: dict[int, Visitor] = {}
        days: dict[tuple[int, dt.date], VisitorDay] = {}
        for visit in c.visits:
            first = visit.first.at(now, tz)
            for owner in (customer, None):
                key = visit.browser if owner else visit.browser + 2
                if key not in browsers:
                    browsers[key] = Visitor.objects.create(shop=shop, client_id=f"b{index}-{key}", customer=owner,
                                                           first_seen_at=first, last_seen_at=first)
                day = (key, first.astimezone(zone).date())
                if day not in days:
                    days[day] = VisitorDay(shop=shop, visitor=browsers[key], day=day[1], first_at=first,
                                           last_at=first + dt.timedelta(seconds=visit.lasted),
                                           custom=dict(visit.custom), **dict(zip(VISIT_COUNTS, visit.counts)),
                                           **dict(zip(VISIT_TEXTS, visit.texts)))
        VisitorDay.objects.bulk_create(days.values())
