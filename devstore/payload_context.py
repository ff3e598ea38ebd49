"""What every webhook payload builder shares: the shop's context (`ShopContext`: its ids, its
currency and the time zone stored UTC times are shown in), how tokens, tags and millisecond times
are written, and the made-up addresses devstore shows because it stores none (each picked by the
resource's id, so every delivery of a resource shows the same address). The Shop resource is here
too, as it is built from the context alone.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from .state import DevStore, money, parse_iso

Payload = dict[str, Any]

# Shopify's plan handles and the names its Shop resource shows for them.
PLAN_DISPLAY_NAMES = {"basic": "Basic", "shopify": "Shopify", "advanced": "Advanced",
                      "shopify_plus": "Shopify Plus", "plus": "Shopify Plus", "enterprise": "Shopify Plus",
                      "partner_test": "Developer Preview", "affiliate": "Development"}


# The made-up addresses devstore shows (it stores none): streets and US cities picked by an id.
STREETS = ("Maple Avenue", "Harbour Street", "Cedar Lane", "Mill Road", "Orchard Way", "King Street", "Elm Court")
CITIES = (("Portland", "Oregon", "OR", "97205"), ("Austin", "Texas", "TX", "78701"),
          ("Columbus", "Ohio", "OH", "43215"), ("Raleigh", "North Carolina", "NC", "27601"),
          ("Albany", "New York", "NY", "12207"))


def _place(seed: int) -> Payload:
    """The street, city, province and zip devstore shows for the resource with id `seed`."""
    city, province, province_code, zip_ = CITIES[(seed // len(STREETS)) % len(CITIES)]
    return {"address1": f"{100 + seed % 900} {STREETS[seed % len(STREETS)]}", "city": city, "province": province,
            "province_code": province_code, "zip": zip_}


def mailing_address(seed: int, first_name: str | None, last_name: str | None, phone: str | None) -> Payload:
    """An order's or checkout's billing / shipping address, in the keys and order of Shopify's samples."""
    place = _place(seed)
    return {"first_name": first_name, "address1": place["address1"], "phone": phone, "city": place["city"],
            "zip": place["zip"], "province": place["province"], "country": "United States", "last_name": last_name,
            "address2": None, "company": None, "latitude": None, "longitude": None,
            "name": " ".join(part for part in (first_name, last_name) if part), "country_code": "US",
            "province_code": place["province_code"]}


def customer_address(row: sqlite3.Row) -> Payload:
    """A customer's `default_address` (devstore gives every customer one, at a made-up place)."""
    place = _place(row["id"])
    first, last = row["first_name"], row["last_name"]
    return {"id": row["id"] * 10 + 1, "customer_id": row["id"], "first_name": first, "last_name": last,
            "company": None, "address1": place["address1"], "address2": None, "city": place["city"],
            "province": place["province"], "country": "United States", "zip": place["zip"], "phone": row["phone"],
            "name": " ".join(part for part in (first, last) if part), "province_code": place["province_code"],
            "country_code": "US", "country_name": "United States", "default": True}


def names(customer_row: sqlite3.Row | None, email: str | None) -> tuple[str | None, str]:
    """Whose name an order's or checkout's addresses carry: the customer's; for a guest, their email's."""
    if customer_row is not None and (customer_row["first_name"] or customer_row["last_name"]):
        return customer_row["first_name"], customer_row["last_name"] or ""
    local = (email or "").split("@", 1)[0].replace(".", " ").replace("_", " ").title()
    return None, local or "Guest"


@dataclass(frozen=True)
class ShopContext:
    """What every payload needs from the shop: ids, currency and the timezone times are shown in."""

    domain: str
    id: int
    name: str
    email: str
    currency: str
    iana_timezone: str
    plan: str
    created_at: str
    tz: ZoneInfo

    def time(self, text: str | None) -> str | None:
        """A stored UTC time shown the way Shopify shows it: local time with the shop's offset."""
        if not text:
            return None
        return parse_iso(text).astimezone(self.tz).isoformat(timespec="seconds")

    @property
    def business_entity_id(self) -> str:
        """An order's `merchant_business_entity_id`: like Shopify's sample, unpadded base64 of a number."""
        return base64.b64encode(str(self.id).encode()).decode().rstrip("=")

    @property
    def primary_location_id(self) -> int:
        """The shop's one location (devstore has no locations; the id is made from the shop's)."""
        return self.id * 10 + 7

    def money_set(self, cents: int, presentment_currency: str | None = None) -> Payload:
        amount = money(cents)
        return {"shop_money": {"amount": amount, "currency_code": self.currency},
                "presentment_money": {"amount": amount, "currency_code": presentment_currency or self.currency}}


def shop_context(store: DevStore, domain: str) -> ShopContext | None:
    row = store.shop(domain)
    if row is None:
        return None
    return ShopContext(domain=row["domain"], id=row["id"], name=row["name"], email=row["email"],
                       currency=row["currency"], iana_timezone=row["iana_timezone"], plan=row["plan"],
                       created_at=row["created_at"], tz=ZoneInfo(row["iana_timezone"]))


def utc_millis(text: str | None) -> str | None:
    """The UTC millisecond form some newer topics use (carts, customer.tags_*): `...T05:00:00.000Z`."""
    if not text:
        return None
    return parse_iso(text).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def digest(*parts: object) -> str:
    """A stable hex token for values Shopify generates (order tokens, recovery keys)."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


def tags_text(raw: str | None) -> str:
    """Tags are a JSON list in state; REST payloads join them with ", "."""
    return ", ".join(json.loads(raw or "[]"))


def shop_resource(ctx: ShopContext) -> Payload:
    """The Shop resource (`app/uninstalled`, `shop/update`)."""
    offset = dt.datetime.now(ctx.tz).strftime("%z")
    place = _place(ctx.id)
    return {
        "id": ctx.id, "name": ctx.name, "email": ctx.email, "domain": ctx.domain, "province": place["province"],
        "country": "US", "address1": place["address1"], "zip": place["zip"], "city": place["city"], "source": None,
        "phone": f"555{ctx.id % 10_000_000:07d}",
        "latitude": None, "longitude": None, "primary_locale": "en", "address2": None,
        "created_at": ctx.time(ctx.created_at), "updated_at": ctx.time(ctx.created_at),
        "country_code": "US", "country_name": "United States", "currency": ctx.currency,
        "customer_email": ctx.email, "timezone": f"(GMT{offset[:3]}:{offset[3:]}) {ctx.iana_timezone}",
        "iana_timezone": ctx.iana_timezone, "shop_owner": ctx.name,
        "money_format": "${{amount}}", "money_with_currency_format": f"${{{{amount}}}} {ctx.currency}",
        "weight_unit": "kg", "province_code": place["province_code"], "taxes_included": False,
        "auto_configure_tax_inclusivity": None, "tax_shipping": None, "county_taxes": True,
        "plan_display_name": PLAN_DISPLAY_NAMES.get(ctx.plan, ctx.plan.replace("_", " ").title()),
        "plan_name": ctx.plan, "has_discounts": True, "has_gift_cards": False, "myshopify_domain": ctx.domain,
        "google_apps_domain": None, "google_apps_login_enabled": None,
        "money_in_emails_format": "${{amount}}", "money_with_currency_in_emails_format": f"${{{{amount}}}} "
                                                                                          f"{ctx.currency}",
        "eligible_for_payments": True, "requires_extra_payments_agreement": False, "password_enabled": False,
        "has_storefront": True, "finances": True, "primary_location_id": ctx.primary_location_id,
        "checkout_api_supported": True,
        "multi_location_enabled": True, "setup_required": False, "pre_launch_enabled": False,
        "enabled_presentment_currencies": [ctx.currency], "marketing_sms_consent_enabled_at_checkout": False,
        "transactional_sms_disabled": False,
    }
