"""GET /proxy/segments: the shopper's segments for the theme's app embed, through Shopify's app proxy
(`https://<shop>/apps/shopseg/segments?client_id=…` on the shop's own domain; shopify.app.toml
[app_proxy]). Shopify's signature is verified before the shop or the customer is believed; the
browser's `client_id` (Shopify's clientId, which the web pixel keeps in a first-party cookie) names
an anonymous visitor.

`segments_receive` is the whole endpoint; the Django view and `ProxyFastPath` (shopseg.fastpath,
under gunicorn) run it, on Django's connection or on one of their own."""
from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from segments.experiences.storefront import shopper_segment_tags
from segments.shops.admin_api import app_secrets
from segments.storefront.batch import CLIENT_ID
from shopseg.errors import Refused
from shopseg.fastpath import ThreadConnection, answer, log_refusal
from shopseg.shopify.app_proxy import AppProxyInvalid, app_proxy_verify

CACHE_SECONDS = 15    # a browser may reuse its answer this long (personal: never a shared cache)
Lookup = Callable[..., "list[str] | None"]


def segments_receive(query_string: str, lookup: Lookup = shopper_segment_tags) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) for a proxied request whose raw query is `query_string`."""
    try:
        proxied = app_proxy_verify(query_string, secrets=app_secrets())
    except AppProxyInvalid as invalid:
        if invalid.status == 401:    # shopifyapp's advice: say no more to a forger than this
            return 401, b"Unauthorized", {"Content-Type": "text/plain", "Cache-Control": "no-store"}
        return _refused(Refused(invalid.status, invalid.code, "The proxied request's parameters are not Shopify's."))
    client_id = (parse_qs(query_string).get("client_id") or [None])[-1]
    if client_id is not None and not CLIENT_ID.fullmatch(client_id):
        return _refused(Refused(400, "invalid_client_id", "client_id must be Shopify's clientId."))
    tags = lookup(shop_domain=proxied.shop_domain, customer_shopify_id=proxied.logged_in_customer_id,
                  client_id=client_id)
    if tags is None:
        return _refused(Refused(404, "shop_not_installed", "This shop does not have the app installed."))
    return 200, json.dumps({"segments": tags}).encode(), {
        "Content-Type": "application/json", "Cache-Control": f"private, max-age={CACHE_SECONDS}"}


def _refused(refused: Refused) -> tuple[int, bytes, dict[str, str]]:
    return refused.status_code, json.dumps(refused.body()).encode(), {
        "Content-Type": "application/json", "Cache-Control": "no-store"}


@require_GET
def proxy_segments(request: HttpRequest) -> HttpResponse:
    status, body, headers = segments_receive(request.META.get("QUERY_STRING", ""))
    return HttpResponse(body, status=status, headers=headers)


class ProxyFastPath:
    """The handler of GET /proxy/segments in shopseg.fastpath.FastPaths."""

    def __init__(self):
        self.connection = ThreadConnection()

    def __call__(self, environ, start_response):
        status, body, headers = segments_receive(environ.get("QUERY_STRING", ""), self._lookup)
        log_refusal(environ, status)
        content_type = headers.pop("Content-Type")
        return answer(start_response, status, body, content_type, headers)

    def _lookup(self, **who) -> list[str] | None:
        return self.connection.run(lambda cursor: shopper_segment_tags(**who, cursor=cursor))
