"""Verify requests Shopify forwards through the app proxy (`https://<shop>/apps/<subpath>/…`).

Shopify signs the query it forwards (HMAC-SHA256, hex, over the sorted `key=value` pairs joined
without separators; repeated values joined by commas) and adds `shop`, `logged_in_customer_id`
(empty when nobody is logged in), `path_prefix` and `timestamp`. shopifyapp's `verify_app_proxy_req`
checks it in constant time, with the current and the previous secret, and refuses a timestamp more
than 90 s away and a repeated `shop`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from shopify_app import verify_app_proxy_req

from .domains import normalize_shop_domain

_CUSTOMER_ID = re.compile(r"[0-9]{1,19}")
_URL = "https://app-proxy.invalid/?"    # only the query is read


class AppProxyInvalid(Exception):
    """Not a request Shopify signed (status 401), or a signed one that makes no sense (400)."""

    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status, self.code = status, code


@dataclass(frozen=True)
class AppProxyRequest:
    shop_domain: str
    logged_in_customer_id: int | None     # Shopify's id of the customer logged in to the storefront


def app_proxy_verify(query_string: str, *, secrets: list[str]) -> AppProxyRequest:
    """The shop and logged-in customer of a proxied request whose raw query is `query_string`."""
    secrets = [s for s in secrets if s]
    if not secrets:
        raise AppProxyInvalid(500, "no_secret")
    result = verify_app_proxy_req(
        {"method": "GET", "url": _URL + query_string, "headers": {}, "body": ""},
        {"client_id": "", "client_secret": secrets[0], "old_client_secret": secrets[1] if len(secrets) > 1 else None})
    if not result.ok:
        raise AppProxyInvalid(result.response.status, result.log.code)
    domain = normalize_shop_domain(f"{result.shop}.myshopify.com")
    customer = result.logged_in_customer_id or ""
    if domain is None or not (customer == "" or _CUSTOMER_ID.fullmatch(customer) and int(customer) < 2**63):
        raise AppProxyInvalid(400, "invalid_parameters")
    return AppProxyRequest(shop_domain=domain, logged_in_customer_id=int(customer) if customer else None)
