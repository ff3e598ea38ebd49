"""GET /proxy/segments: the shopper's segments for the theme's app embed, through Shopify's app proxy
(`https://<shop>/apps/shopseg/segments?client_id=…` on the shop's own domain; shopify.app.toml
[app_proxy]). Shopify's signature is verified before the shop or the customer is believed; the
browser's `client_id` (Shopify's, as the web pixel sends it) names an anonymous visitor."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from segments.experiences.storefront import shopper_segment_tags
from segments.shops.admin_api import app_secrets
from segments.shops.models import Shop, ShopStatus
from segments.storefront.batch import CLIENT_ID
from shopseg.errors import Refused
from shopseg.shopify.app_proxy import AppProxyInvalid, app_proxy_verify

CACHE_SECONDS = 15    # a browser may reuse its answer this long (personal: never a shared cache)


def _refused(refused: Refused) -> JsonResponse:
    return JsonResponse(refused.body(), status=refused.status_code, headers={"Cache-Control": "no-store"})


@require_GET
def proxy_segments(request: HttpRequest) -> HttpResponse:
    try:
        proxied = app_proxy_verify(request.META.get("QUERY_STRING", ""), secrets=app_secrets())
    except AppProxyInvalid as invalid:
        # shopifyapp's advice: answer its 401 as it is (no detail for a forger)
        if invalid.status == 401:
            return HttpResponse("Unauthorized", status=401, content_type="text/plain", headers={"Cache-Control": "no-store"})
        return _refused(Refused(invalid.status, invalid.code, "The proxied request's parameters are not Shopify's."))
    client_id = request.GET.get("client_id") or None
    if client_id is not None and not CLIENT_ID.fullmatch(client_id):
        return _refused(Refused(400, "invalid_client_id", "client_id must be Shopify's clientId."))
    shop = Shop.objects.filter(domain=proxied.shop_domain).exclude(status=ShopStatus.UNINSTALLED).first()
    if shop is None:
        return _refused(Refused(404, "shop_not_installed", "This shop does not have the app installed."))
    tags = shopper_segment_tags(shop=shop, customer_shopify_id=proxied.logged_in_customer_id, client_id=client_id)
    return JsonResponse({"segments": tags}, headers={"Cache-Control": f"private, max-age={CACHE_SECONDS}"})
