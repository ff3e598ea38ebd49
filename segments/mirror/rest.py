"""Shopify's REST-shaped webhook payloads parsed into the mirror's records (see records.py).

Parsing is pure: no queries, no clock. Every field may be missing or null in a real delivery, so
each is read defensively; only a missing identity (an order's `id`, a checkout's `token`) is an
error, raised as `PayloadError` (a ValueError) naming the resource and field, which the event records.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from segments.mirror.models import Device, MarketingState, ShippingSpeed
from segments.mirror.records import (
    CartRecord, CheckoutRecord, CustomerRecord, LineItemRecord, OrderRecord, ProductRecord, RefundRecord,
)

ZERO = Decimal("0.00")
TEXT = 255  # the mirror's CharField length for titles, vendors and methods
MARKETING_STATES = frozenset(MarketingState.values)
# Shipping line words that mean the shopper paid for speed, or chose to collect the order.
EXPEDITED_WORDS = ("express", "overnight", "priority", "next day", "next-day", "nextday", "2-day", "2 day",
                   "two-day", "two day", "expedited", "rush")
PICKUP_WORDS = ("pickup", "pick-up", "pick up", "local")


class PayloadError(ValueError):
    """A payload without the fields that identify its resource."""


@dataclass(frozen=True)
class ConsentRecord:
    """A consent topic's news: one channel's new marketing state (None: that channel is not in it)."""

    customer_shopify_id: int
    email_marketing: str | None = None
    sms_marketing: str | None = None
    at: dt.datetime | None = None      # the consent's own consent_updated_at: orders late deliveries


@dataclass(frozen=True)
class TagChange:
    """customer.tags_added / customer.tags_removed: only the tags that changed."""

    customer_shopify_id: int
    tags: list[str]


@dataclass(frozen=True)
class CustomerMerge:
    kept_shopify_id: int
    merged_shopify_id: int
    completed: bool


# -- scalars -------------------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    """A Shopify id: a JSON number, a numeric string or a GID (`gid://shopify/Customer/1`)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().rsplit("/", 1)[-1].split("?", 1)[0]
    return int(text) if text.isdigit() else None


def _required_id(payload: dict, key: str, resource: str) -> int:
    found = _int(payload.get(key))
    if found is None:
        raise PayloadError(f"{resource} payload has no usable {key!r}")
    return found


def _text(value: Any, limit: int = TEXT) -> str:
    return "" if value is None else str(value).strip()[:limit]


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def money(payload: dict, key: str) -> Decimal:
    """`key_set.shop_money.amount` (the shop's currency) when present, else the plain `key`."""
    money_set = payload.get(f"{key}_set")
    if isinstance(money_set, dict) and isinstance(money_set.get("shop_money"), dict):
        found = _decimal(money_set["shop_money"].get("amount"))
        if found is not None:
            return found
    found = _decimal(payload.get(key))
    return found if found is not None else ZERO


def timestamp(value: Any) -> dt.datetime | None:
    """ISO 8601 with an offset (`-05:00`) or `Z`, as aware datetimes; naive ones are taken as UTC."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def tag_list(value: Any) -> list[str]:
    """REST joins tags with ", "; newer topics send a list. Either way: trimmed, no empties."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(tag).strip() for tag in items if str(tag).strip()]


def marketing_state(consent: Any) -> str | None:
    """A consent object's state as a MarketingState value; None when the payload does not say."""
    state = _object(consent).get("state")
    if not isinstance(state, str) or not state.strip():
        return None
    state = state.strip().lower()
    return state if state in MARKETING_STATES else MarketingState.UNKNOWN.value


def device_of(user_agent: Any) -> str:
    """The device class a browser's user agent names (tablets first: iPad and Android tablets say so)."""
    agent = _text(user_agent, 2000).lower()
    if not agent:
        return Device.UNKNOWN.value
    if "ipad" in agent or "tablet" in agent or ("android" in agent and "mobile" not in agent):
        return Device.TABLET.value
    if "mobi" in agent or "iphone" in agent or "ipod" in agent or "android" in agent:
        return Device.MOBILE.value
    return Device.DESKTOP.value


def shipping_speed(line: dict | None) -> str:
    if line is None:
        return ShippingSpeed.NONE.value
    words = f"{_text(line.get('code'))} {_text(line.get('title'))}".lower()
    if any(word in words for word in PICKUP_WORDS):
        return ShippingSpeed.PICKUP.value
    if any(word in words for word in EXPEDITED_WORDS):
        return ShippingSpeed.EXPEDITED.value
    return ShippingSpeed.STANDARD.value


# -- customers -----------------------------------------------------------------------------------
def customer_record(payload: dict) -> CustomerRecord:
    """customers/create|update (and a customer nested in an order or checkout)."""
    email_state = marketing_state(payload.get("email_marketing_consent"))
    sms_state = marketing_state(payload.get("sms_marketing_consent"))
    return CustomerRecord(
        shopify_id=_required_id(payload, "id", "customer"),
        updated_at=timestamp(payload.get("updated_at")),
        created_at=timestamp(payload.get("created_at")),
        email=_text(payload.get("email"), 320).lower(),
        phone=_text(payload.get("phone"), 40),
        first_name=_text(payload.get("first_name")),
        last_name=_text(payload.get("last_name")),
        state=_text(payload.get("state"), 20),
        # "unknown" means "not in this payload": the writer keeps what it holds
        email_marketing=email_state or MarketingState.UNKNOWN.value,
        sms_marketing=sms_state or MarketingState.UNKNOWN.value,
        # since 2025-01 customer payloads have no tags; None keeps the mirror's (tag topics maintain them)
        tags=tag_list(payload["tags"]) if "tags" in payload and payload["tags"] is not None else None,
    )


def customer_deleted_id(payload: dict) -> int:
    return _required_id(payload, "id", "customer")


def email_consent(payload: dict) -> ConsentRecord:
    """customers_email_marketing_consent/update."""
    consent = _object(payload.get("email_marketing_consent"))
    return ConsentRecord(customer_shopify_id=_required_id(payload, "customer_id", "email consent"),
                         email_marketing=marketing_state(consent), at=timestamp(consent.get("consent_updated_at")))


def sms_consent(payload: dict) -> ConsentRecord:
    """customers_marketing_consent/update (the SMS channel)."""
    consent = _object(payload.get("sms_marketing_consent"))
    return ConsentRecord(customer_shopify_id=_required_id(payload, "id", "SMS consent"),
                         sms_marketing=marketing_state(consent), at=timestamp(consent.get("consent_updated_at")))


def tag_change(payload: dict) -> TagChange:
    return TagChange(customer_shopify_id=_required_id(payload, "customerId", "customer tags"),
                     tags=tag_list(payload.get("tags")))


def customer_merge(payload: dict) -> CustomerMerge:
    return CustomerMerge(
        kept_shopify_id=_required_id(payload, "admin_graphql_api_customer_kept_id", "customer merge"),
        merged_shopify_id=_required_id(payload, "admin_graphql_api_customer_deleted_id", "customer merge"),
        completed=_text(payload.get("status")).lower() == "completed",
    )


# -- orders and refunds --------------------------------------------------------------------------
def order_is_test(payload: dict) -> bool:
    return payload.get("test") is True


def order_id(payload: dict) -> int:
    return _required_id(payload, "id", "order")


def _line_item(item: dict) -> LineItemRecord | None:
    line_id = _int(item.get("id"))
    if line_id is None:
        return None
    quantity = _int(item.get("quantity"))
    return LineItemRecord(
        shopify_id=line_id,
        quantity=quantity if quantity is not None else 1,
        price=money(item, "price"),
        total_discount=money(item, "total_discount"),
        product_id=_int(item.get("product_id")),
        variant_id=_int(item.get("variant_id")),
        title=_text(item.get("title") or item.get("name")),
        vendor=_text(item.get("vendor")),
        product_type="",  # REST line items do not carry it; the handler looks it up by product
    )


def refund_amount(refund: dict) -> Decimal:
    """What went back to the shopper: successful refund transactions, else the refunded lines."""
    transactions = [t for t in _dicts(refund.get("transactions"))
                    if _text(t.get("kind")).lower() == "refund" and _text(t.get("status")).lower() == "success"]
    if transactions:
        return sum((money(t, "amount") for t in transactions), ZERO)
    return sum((money(line, "subtotal") for line in _dicts(refund.get("refund_line_items"))), ZERO)


def refund_is_test(refund: dict) -> bool:
    """A refund whose every transaction is a test one belongs to a test order (never mirrored)."""
    transactions = _dicts(refund.get("transactions"))
    return bool(transactions) and all(t.get("test") is True for t in transactions)


def refund_record(payload: dict, order_shopify_id: int | None = None) -> RefundRecord:
    """refunds/create, or one entry of an order's `refunds`."""
    order_id = _int(payload.get("order_id")) or order_shopify_id
    if order_id is None:
        raise PayloadError("refund payload has no usable 'order_id'")
    created = timestamp(payload.get("created_at")) or timestamp(payload.get("processed_at"))
    if created is None:
        raise PayloadError("refund payload has no usable 'created_at'")
    return RefundRecord(shopify_id=_required_id(payload, "id", "refund"), order_shopify_id=order_id,
                        created_at=created, amount=refund_amount(payload))


def _shipping_total(payload: dict, lines: list[dict]) -> Decimal:
    if isinstance(payload.get("total_shipping_price_set"), dict):
        return money(payload, "total_shipping_price")
    return sum((money(line, "price") for line in lines), ZERO)


def order_record(payload: dict) -> OrderRecord:
    """orders/create|updated|paid|cancelled. Callers keep test orders out (see order_is_test)."""
    shopify_id = order_id(payload)
    created = timestamp(payload.get("created_at")) or timestamp(payload.get("processed_at"))
    if created is None:
        raise PayloadError("order payload has no usable 'created_at'")
    shipping_lines = [line for line in _dicts(payload.get("shipping_lines")) if not line.get("is_removed")]
    first_shipping = shipping_lines[0] if shipping_lines else None
    source = _text(payload.get("source_name"), 64)
    device = Device.POS.value if source.lower() == "pos" else device_of(
        _object(payload.get("client_details")).get("user_agent"))
    refunds = [refund_record(refund, shopify_id) for refund in _dicts(payload.get("refunds"))]
    customer = _object(payload.get("customer"))
    return OrderRecord(
        shopify_id=shopify_id,
        created_at=created,
        updated_at=timestamp(payload.get("updated_at")),
        customer_shopify_id=_int(customer.get("id")),
        email=_text(payload.get("email") or payload.get("contact_email") or customer.get("email"), 320).lower(),
        name=_text(payload.get("name"), 64),
        processed_at=timestamp(payload.get("processed_at")),
        cancelled_at=timestamp(payload.get("cancelled_at")),
        financial_status=_text(payload.get("financial_status"), 32),
        currency=_text(payload.get("currency"), 3),
        subtotal=money(payload, "subtotal_price"),
        total=money(payload, "total_price"),
        total_discounts=money(payload, "total_discounts"),
        total_shipping=_shipping_total(payload, shipping_lines),
        total_refunded=sum((refund.amount for refund in refunds), ZERO),
        discount_codes=[_text(code.get("code")) for code in _dicts(payload.get("discount_codes"))
                        if _text(code.get("code"))],
        source_name=source,
        device=device,
        shipping_method=_text(first_shipping.get("title")) if first_shipping else "",
        shipping_speed=shipping_speed(first_shipping),
        cart_token=_text(payload.get("cart_token")),
        checkout_token=_text(payload.get("checkout_token")),
        line_items=[line for line in map(_line_item, _dicts(payload.get("line_items"))) if line is not None],
        refunds=refunds,
    )


# -- checkouts, carts, products ------------------------------------------------------------------
def _keyed_by_token(payload: dict, resource: str, token: Any) -> tuple[str, dt.datetime, dt.datetime | None]:
    """Checkouts and carts are keyed by token and need a creation time (or at least an update time)."""
    token = _text(token)
    if not token:
        raise PayloadError(f"{resource} payload has no usable 'token'")
    updated = timestamp(payload.get("updated_at"))
    created = timestamp(payload.get("created_at")) or updated
    if created is None:
        raise PayloadError(f"{resource} payload has no usable 'created_at'")
    return token, created, updated


def checkout_record(payload: dict) -> CheckoutRecord:
    token, created, updated = _keyed_by_token(payload, "checkout", payload.get("token"))
    customer = _object(payload.get("customer"))
    return CheckoutRecord(
        token=token,
        created_at=created,
        updated_at=updated,
        shopify_id=_int(payload.get("id")),
        cart_token=_text(payload.get("cart_token")),
        customer_shopify_id=_int(customer.get("id")),
        email=_text(payload.get("email") or customer.get("email"), 320).lower(),
        total=money(payload, "total_price"),
        device=device_of(_object(payload.get("client_details")).get("user_agent")),
        line_item_count=len(_dicts(payload.get("line_items"))),
        completed_at=timestamp(payload.get("completed_at")),
    )


@dataclass(frozen=True)
class CheckoutDeletion:
    """What a checkouts/delete body names its checkout by (None / "": not in it)."""

    token: str | None
    shopify_id: int | None
    cart_token: str


def checkout_deleted(payload: dict) -> CheckoutDeletion:
    """checkouts/delete names the checkout by `id` and `cart_token` (Shopify's sample has no `token`),
    while checkouts/create|update name it by `token` and `cart_token` with no `id`: the cart token is
    the one key the shapes share. A `token`, should a version send one, is used as well."""
    deletion = CheckoutDeletion(token=_text(payload.get("token")) or None, shopify_id=_int(payload.get("id")),
                                cart_token=_text(payload.get("cart_token")))
    if deletion.token is None and deletion.shopify_id is None and not deletion.cart_token:
        raise PayloadError("checkout deletion payload has no usable 'token', 'id' or 'cart_token'")
    return deletion


def cart_record(payload: dict) -> CartRecord:
    """carts/create|update: no total field, so the lines' prices are summed."""
    token, created, updated = _keyed_by_token(payload, "cart", payload.get("token") or payload.get("id"))
    lines = _dicts(payload.get("line_items"))
    total = ZERO
    for line in lines:
        if line.get("line_price_set") is not None or line.get("line_price") is not None:
            total += money(line, "line_price")
        else:
            total += money(line, "price") * (_int(line.get("quantity")) or 1)
    return CartRecord(token=token, created_at=created, updated_at=updated, total=total,
                      line_item_count=len(lines))


def product_record(payload: dict) -> ProductRecord:
    return ProductRecord(shopify_id=_required_id(payload, "id", "product"),
                         updated_at=timestamp(payload.get("updated_at")), title=_text(payload.get("title")), product_type=_text(payload.get("product_type")),
                         vendor=_text(payload.get("vendor")), tags=tag_list(payload.get("tags")))


def product_deleted_id(payload: dict) -> int:
    return _required_id(payload, "id", "product")
