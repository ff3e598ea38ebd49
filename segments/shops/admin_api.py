"""Building Shopify clients for a shop from settings: the one place base URLs are made."""
from __future__ import annotations

from urllib.parse import urlsplit

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


def any_admin_origin() -> str:
    """The origin of any shop's admin, for a page served before the shop is known (the bounce):
    `https://*.myshopify.com` on Shopify, devstore's one origin locally."""
    scheme, _, rest = settings.SHOPIFY_SHOP_BASE_URL.format(shop="*.myshopify.com").partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def admin_url(shop_domain: str, path: str = "") -> str:
    """A page of the shop's Shopify admin (`customers/123`), for links the merchant follows out of the
    app (opened in the top window, replacing the admin that frames us).

    A shop served on its own myshopify.com domain is on Shopify, whose admin lives at
    https://admin.shopify.com/store/<handle> (the handle is the myshopify.com subdomain; the
    https://{shop}/admin/... form only redirects there, reloading the admin on the way). Any other
    base URL (devstore) serves its admin under that base, as Shopify once did: {base}/admin/...
    """
    base = base_url(shop_domain)
    if (urlsplit(base).hostname or "").endswith(".myshopify.com"):
        root = f"https://admin.shopify.com/store/{shop_domain.removesuffix('.myshopify.com')}"
    else:
        root = f"{base}/admin"
    return f"{root}/{path.lstrip('/')}" if path else root


def embedded_app_url(shop_domain: str) -> str:
    return f"{base_url(shop_domain)}/admin/apps/{settings.SHOPIFY_API_KEY}"


def oauth_client(shop_domain: str) -> OAuthClient:
    return OAuthClient(base_url(shop_domain), api_key=settings.SHOPIFY_API_KEY,
                       api_secret=settings.SHOPIFY_API_SECRET, timeout=settings.SHOPIFY_HTTP_TIMEOUT_SECONDS)


def graphql_client(shop_domain: str, token: str) -> ShopClient:
    return ShopClient(base_url=base_url(shop_domain), token=token, api_version=settings.SHOPIFY_API_VERSION,
                      timeout=settings.SHOPIFY_HTTP_TIMEOUT_SECONDS)
