"""The app proxy as Shopify runs it: a storefront request under `/<prefix>/<subpath>/…` is forwarded
to the app's proxy URL with the shopper's query plus `shop`, `logged_in_customer_id` (empty when
nobody is logged in), `path_prefix` and `timestamp`, signed with the app's secret.

The signature (shopify.dev, "Authenticate app proxies"): the query's parameters without `signature`,
each key's values joined by commas, as `key=value` strings sorted by key and concatenated without a
separator; HMAC-SHA256 of that with the app's secret, in hex.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlencode

import httpx


def proxy_signature(params: list[tuple[str, str]], secret: str) -> str:
    joined: dict[str, list[str]] = {}
    for key, value in params:
        if key != "signature":
            joined.setdefault(key, []).append(value)
    message = "".join(f"{key}={','.join(values)}" for key, values in sorted(joined.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def proxied_query(query: str, *, shop: str, customer_id: int | None, path_prefix: str, secret: str,
                  now: float | None = None) -> str:
    """The query string Shopify sends the app for a storefront request whose own query is `query`."""
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
              if k not in ("shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature")]
    params += [("shop", shop), ("logged_in_customer_id", str(customer_id) if customer_id else ""),
               ("path_prefix", path_prefix), ("timestamp", str(int(time.time() if now is None else now)))]
    return urlencode(params + [("signature", proxy_signature(params, secret))])


# Headers of the app's answer the storefront passes on (Shopify strips others, cookies included).
PASSED_HEADERS = ("Content-Type", "Cache-Control")


def proxy_forward(*, app_url: str, proxy_url: str, rest: str, query: str, shop: str, customer_id: int | None,
                  path_prefix: str, secret: str, method: str = "GET", body: bytes = b"",
                  content_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """The app's answer to a storefront request under its proxy's path: (status, headers, body)."""
    base = f"{app_url.rstrip('/')}{proxy_url}" if proxy_url.startswith("/") else proxy_url
    signed = proxied_query(query, shop=shop, customer_id=customer_id, path_prefix=path_prefix, secret=secret)
    try:
        answer = httpx.request(method, f"{base.rstrip('/')}/{rest}?{signed}", content=body or None, timeout=10,
                               headers={"Content-Type": content_type} if content_type else None)
    except httpx.HTTPError:
        return 502, {"Content-Type": "text/plain"}, b"The app did not answer."
    return answer.status_code, {k: answer.headers[k] for k in PASSED_HEADERS if k in answer.headers}, answer.content
