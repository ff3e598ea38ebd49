"""Source-neutral records of Shopify resources, as the mirror stores them."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class CustomerRecord:
    shopify_id: int
    updated_at: dt.datetime | None
    created_at: dt.datetime | None = None
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    state: str = ""
    email_marketing: str = "unknown"
    sms_marketing: str = "unknown"
    tags: list[str] | None = None      # None: the source does not carry tags (webhooks since 2025-01)


@dataclass(frozen=True)
class ProductRecord:
    shopify_id: int
    updated_at: dt.datetime | None
    title: str = ""
    product_type: str = ""
    vendor: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LineItemRecord:
    shopify_id: int
    quantity: int
    price: Decimal
    total_discount: Decimal = Decimal(0)
    product_id: int | None = None
    variant_id: int | None = None
    title: str = ""
    vendor: str = ""
    product_type: str = ""


@dataclass(frozen=True)
class RefundRecord:
    shopify_id: int
    order_shopify_id: int
    created_at: dt.datetime
    amount: Decimal


@dataclass(frozen=True)
class OrderRecord:
    shopify_id: int
    created_at: dt.datetime
    updated_at: dt.datetime | None
    customer_shopify_id: int | None = None
    email: str = ""
    name: str = ""
    processed_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    financial_status: str = ""
    currency: str = ""
    subtotal: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    total_discounts: Decimal = Decimal(0)
    total_shipping: Decimal = Decimal(0)
    total_refunded: Decimal = Decimal(0)
    discount_codes: list[str] = field(default_factory=list)
    source_name: str = ""
    device: str = "unknown"
    shipping_method: str = ""
    shipping_speed: str = "none"
    cart_token: str = ""
    checkout_token: str = ""
    line_items: list[LineItemRecord] | None = None   # None: not in this source; keep what is stored
    refunds: list[RefundRecord] | None = None


@dataclass(frozen=True)
class CheckoutRecord:
    token: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    shopify_id: int | None = None
    cart_token: str = ""
    customer_shopify_id: int | None = None
    email: str = ""
    total: Decimal = Decimal(0)
    device: str = "unknown"
    line_item_count: int = 0
    completed_at: dt.datetime | None = None


@dataclass(frozen=True)
class CartRecord:
    token: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    total: Decimal = Decimal(0)
    line_item_count: int = 0


@dataclass(frozen=True)
class CostRecord:
    """A variant's unit cost as its inventory item holds it, in the shop currency (None: no cost entered)."""
    inventory_item_id: int
    updated_at: dt.datetime | None
    unit_cost: Decimal | None = None
    variant_id: int | None = None      # None: not in this source (inventory_items/* bodies name no variant)


@dataclass(frozen=True)
class VariantLink:
    """A variant and its inventory item, as a products/* body names them."""
    variant_id: int
    inventory_item_id: int
