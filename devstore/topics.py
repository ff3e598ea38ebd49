"""Webhook topics devstore knows: REST form (`orders/create`) <-> GraphQL enum (`ORDERS_CREATE`)."""
from __future__ import annotations

from shopseg.shopify.app_config import app_config_load

from .inventory import READ_SCOPES as INVENTORY_READ_SCOPES

TOPICS: dict[str, str] = {
    "orders/create": "ORDERS_CREATE",
    "orders/updated": "ORDERS_UPDATED",
    "orders/paid": "ORDERS_PAID",
    "orders/cancelled": "ORDERS_CANCELLED",
    "orders/delete": "ORDERS_DELETE",
    "refunds/create": "REFUNDS_CREATE",
    "checkouts/create": "CHECKOUTS_CREATE",
    "checkouts/update": "CHECKOUTS_UPDATE",
    "checkouts/delete": "CHECKOUTS_DELETE",
    "carts/create": "CARTS_CREATE",
    "carts/update": "CARTS_UPDATE",
    "customers/create": "CUSTOMERS_CREATE",
    "customers/update": "CUSTOMERS_UPDATE",
    "customers/delete": "CUSTOMERS_DELETE",
    "customers/merge": "CUSTOMERS_MERGE",
    "customers_email_marketing_consent/update": "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE",
    "customers_marketing_consent/update": "CUSTOMERS_MARKETING_CONSENT_UPDATE",
    "customer.tags_added": "CUSTOMER_TAGS_ADDED",
    "customer.tags_removed": "CUSTOMER_TAGS_REMOVED",
    "products/create": "PRODUCTS_CREATE",
    "products/update": "PRODUCTS_UPDATE",
    "products/delete": "PRODUCTS_DELETE",
    "inventory_items/create": "INVENTORY_ITEMS_CREATE",
    "inventory_items/update": "INVENTORY_ITEMS_UPDATE",
    "inventory_items/delete": "INVENTORY_ITEMS_DELETE",
    "app/uninstalled": "APP_UNINSTALLED",
    "app/scopes_update": "APP_SCOPES_UPDATE",
    "shop/update": "SHOP_UPDATE",
    "bulk_operations/finish": "BULK_OPERATIONS_FINISH",
}

# Mandatory compliance topics: declared in the app's configuration (shopify.app.toml), never through
# the API (webhookSubscriptionCreate refuses them), so devstore delivers them to the URI the app
# declares there, under its registered app_url (apps.app_url + COMPLIANCE_PATH).
_DECLARED = app_config_load()
COMPLIANCE_TOPICS = tuple(sorted(_DECLARED.compliance_topics))

ENUM_TO_REST: dict[str, str] = {enum: rest for rest, enum in TOPICS.items()}

# Topics that need a scope; delivered only when the installation has it. A tuple is alternatives,
# any one of which will do: the inventory item topics "can now be configured with either the
# read_inventory or read_products scope" (Shopify changelog, for all API versions).
Scope = str | tuple[str, ...]
TOPIC_SCOPES: dict[str, Scope] = {
    "orders/": "read_orders",
    "refunds/": "read_orders",
    "checkouts/": "read_orders",
    "carts/": "read_orders",
    "customers/": "read_customers",
    "customer.": "read_customers",
    "products/": "read_products",
    "inventory_items/": INVENTORY_READ_SCOPES,
}


def required_scope(rest_topic: str) -> Scope | None:
    for prefix, scope in TOPIC_SCOPES.items():
        if rest_topic.startswith(prefix):
            return scope
    return None


def scope_granted(granted: set[str], needed: Scope | None) -> bool:
    """write_X implies read_X, as on Shopify; of alternatives, one is enough."""
    if needed is None:
        return True
    if isinstance(needed, tuple):
        return any(scope_granted(granted, one) for one in needed)
    return needed in granted or needed.replace("read_", "write_", 1) in granted


def scope_text(needed: Scope) -> str:
    """How Shopify names what is needed: "`read_orders` access scope", alternatives joined by "or"."""
    alternatives = needed if isinstance(needed, tuple) else (needed,)
    return " or ".join(f"`{scope}` access scope" for scope in alternatives)


_PATHS = set(_DECLARED.compliance_topics.values())
if len(_PATHS) != 1 or not next(iter(_PATHS)).startswith("/"):
    raise ValueError("shopify.app.toml must send every compliance topic to one path under application_url")
COMPLIANCE_PATH = _PATHS.pop()
