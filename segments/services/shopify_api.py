"""Building Shopify clients for a shop from settings: the one place base URLs are made."""
from __future__ import annotations

from django.conf import settings

from shopseg.shopify.client import ShopClient
from shopseg.shopify.domains import shop_base_url
from shopseg.shopify.oauth import OAuthClient


def app_secrets() -> list[str]:
    """Current secret first; the previous one still verifies during a rotation."""
    return [s for s in (settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS) if s]


def base_url(shop_domain: str) -> str:
    return shop_base_url(settings.SHOPIFY_SHOP_BASE_URL, shop_domain)


def admin_origin(shop_domain: str) -> str:
    """The origin that frames the embedded app for this shop (https://{shop} on Shopify)."""
    scheme, _, rest = base_url(shop_domain).partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def embedded_app_url(shop_domain: str) -> str:
    return f"{base_url(shop_domain)}/admin/apps/{settings.SHOPIFY_API_KEY}"


def oauth_client(shop_domain: str) -> OAuthClient:
    return OAuthClient(base_url(shop_domain), api_key=settings.SHOPIFY_API_KEY,
                       api_secret=settings.SHOPIFY_API_SECRET, timeout=settings.SHOPIFY_HTTP_TIMEOUT_SECONDS)


def graphql_client(shop_domain: str, token: str) -> ShopClient:
    return ShopClient(base_url=base_url(shop_domain), token=token, api_version=settings.SHOPIFY_API_VERSION,
                      timeout=settings.SHOPIFY_HTTP_TIMEOUT_SECONDS)
