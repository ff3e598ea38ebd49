"""Shop domain validation: the only way a shop name may become part of a URL."""
from __future__ import annotations

import re

# Shopify's WEAK_SHOP_VALIDATION check wants this exact, anchored pattern (after lower-casing).
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


def normalize_shop_domain(raw: object) -> str | None:
    """Lower-cased, stripped `{handle}.myshopify.com`, or None if it is anything else."""
    if not isinstance(raw, str):
        return None
    candidate = raw.strip().lower()
    if len(candidate) > 255 or not SHOP_DOMAIN.fullmatch(candidate):
        return None
    return candidate


def shop_base_url(template: str, shop: str) -> str:
    """Where a validated shop's Admin API lives: `https://{shop}` in production, devstore locally."""
    if normalize_shop_domain(shop) != shop:
        raise ValueError("shop must be a validated *.myshopify.com domain")
    return template.format(shop=shop).rstrip("/")
