"""The embedded admin: session tokens on every page and API call, CSP per shop, token exchange."""
import time
from urllib.parse import urlencode

import jwt
import pytest

from segments.shops.models import Shop, ShopStatus
from shopseg.shopify.signatures import query_hmac

pytestmark = pytest.mark.django_db


def session_token(devstore, shop, api_key):
    return devstore.control("GET", f"/shops/{shop}/session-token/{api_key}")["token"]


def embedded_query(settings, shop, id_token):
    params = {"embedded": "1", "shop": shop, "host": "YWRtaW4", "id_token": id_token,
              "timestamp": str(int(time.time())), "locale": "en"}
    params["hmac"] = query_hmac({k: [v] for k, v in params.items()}, settings.SHOPIFY_API_SECRET)
    return urlencode(params)


def test_embedded_load_renders_with_app_bridge_and_csp(client, devstore, settings, installed_shop):
    token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
    response = client.get("/?" + embedded_query(settings, installed_shop.domain, token))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<meta name="shopify-api-key" content="{settings.SHOPIFY_API_KEY}">' in html
    assert f'<script src="{settings.SHOPIFY_APP_BRIDGE_URL}"></script>' in html
    assert directives(response)["frame-ancestors"] == f"{devstore.url} https://admin.shopify.com"
    assert "X-Frame-Options" not in response
    assert response["Cache-Control"] == "no-store"                     # a shop's customers: never cached


def test_production_csp_names_the_shop(client, devstore, settings, installed_shop):
    token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
    settings.SHOPIFY_SHOP_BASE_URL = "https://{shop}"
    response = client.get("/admin/?" + urlencode({"id_token": token, "shop": installed_shop.domain}))
    assert directives(response)["frame-ancestors"] == f"https://{installed_shop.domain} https://admin.shopify.com"


def test_page_without_token_bounces_and_non_embedded_pages_refuse_framing(client, settings):
    settings.SHOPIFY_SHOP_BASE_URL = "https://{shop}"
    response = client.get("/admin/?shop=demo.myshopify.com")
    assert response.status_code == 200 and "segments/bounce.js" in response.content.decode()
    # The unsigned `shop` parameter does not choose who may frame the bounce: any shop's admin may.
    assert directives(response)["frame-ancestors"] == "https://*.myshopify.com https://admin.shopify.com"
    assert "demo.myshopify.com" not in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"
    assert directives(client.get("/healthz"))["frame-ancestors"] == "'none'"


def test_the_policy_allows_scripts_from_us_and_app_bridge_only(client, settings):
    response = client.get("/admin/?shop=demo.myshopify.com")
    policy = directives(response)
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["script-src"] == "'self' https://cdn.shopify.com"       # no 'unsafe-inline', no other host
    assert "<script>" not in response.content.decode()                    # so no page may carry an inline one


def directives(response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: its sources}."""
    return dict((part.strip().split(" ", 1) + [""])[:2] for part in response["Content-Security-Policy"].split(";")
                if part.strip())


def test_forged_session_token_is_refused(client, devstore, settings, installed_shop):
    forged = jwt.encode({"iss": f"https://{installed_shop.domain}/admin", "dest": f"https://{installed_shop.domain}",
                         "aud": settings.SHOPIFY_API_KEY, "sub": "1", "exp": int(time.time()) + 60,
                         "nbf": int(time.time()), "jti": "x", "sid": "y"}, "w" * 40, algorithm="HS256")
    response = client.get("/admin/?" + urlencode({"id_token": forged}))
    assert response.status_code == 401


def test_token_exchange_installs_on_embedded_load(client, devstore, settings, django_capture_on_commit_callbacks):
    # Shopify-managed install: the app is installed in devstore, the app has never seen the shop.
    domain = devstore.create_shop()
    devstore.store.conn().execute(
        "INSERT INTO installations (shop, api_key, scopes, installed_at) VALUES (?, ?, ?, '2026-01-01T00:00:00Z')",
        (domain, settings.SHOPIFY_API_KEY, "read_customers,write_customers,read_orders,read_products"))
    token = session_token(devstore, domain, settings.SHOPIFY_API_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get("/?" + embedded_query(settings, domain, token))
    assert response.status_code == 200
    shop = Shop.objects.get(domain=domain)
    assert shop.status == ShopStatus.INSTALLED and shop.refresh_token.startswith("shprt_")
    assert shop.shopify_gid  # post-install ran


def test_needs_reauth_banner(client, devstore, settings, installed_shop):
    Shop.objects.filter(pk=installed_shop.pk).update(status=ShopStatus.NEEDS_REAUTH,
                                                     status_reason="token refresh refused (invalid_grant)")
    token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
    response = client.get("/admin/?" + urlencode({"id_token": token}))
    assert response.status_code == 200
    assert "needs to be re-authorized" in response.content.decode()


class TestApi:
    def test_session_token_authenticates_the_shop(self, client, devstore, settings, installed_shop):
        token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
        response = client.get("/api/shop", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        assert response.json()["domain"] == installed_shop.domain

    @pytest.mark.parametrize("header", ["", "Bearer ", "Bearer nonsense", "Basic abc"])
    def test_missing_or_bad_token_is_401_with_retry_header(self, client, header):
        response = client.get("/api/shop", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")
        assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"

    def test_shop_a_token_sees_only_shop_a(self, client, devstore, settings, installed_shop,
                                           django_capture_on_commit_callbacks):
        from tests.conftest import run_install

        other = devstore.create_shop()
        with django_capture_on_commit_callbacks(execute=True):
            run_install(client, devstore, other, settings.SHOPIFY_API_KEY)
        token_a = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
        token_b = session_token(devstore, other, settings.SHOPIFY_API_KEY)
        assert client.get("/api/shop", HTTP_AUTHORIZATION=f"Bearer {token_a}").json()["domain"] == \
            installed_shop.domain
        assert client.get("/api/shop", HTTP_AUTHORIZATION=f"Bearer {token_b}").json()["domain"] == other
        # a shop-A token naming shop B in the query changes nothing
        response = client.get(f"/api/shop?shop={other}", HTTP_AUTHORIZATION=f"Bearer {token_a}")
        assert response.json()["domain"] == installed_shop.domain

    def test_uninstalled_shop_token_is_refused(self, client, devstore, settings, installed_shop):
        from segments.shops.install import shop_uninstall

        token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
        shop_uninstall(domain=installed_shop.domain)
        assert client.get("/api/shop", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_failing_deliveries_are_shown_to_the_merchant(client, devstore, settings, installed_shop):
    import uuid

    from webhooks.models import EventStatus, WebhookEvent

    token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
    quiet = client.get("/admin/?" + urlencode({"id_token": token})).content.decode()
    assert "Live updates need attention" not in quiet
    for status, attempts in ((EventStatus.FAILED, 8), (EventStatus.PENDING, 2)):
        WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=installed_shop.domain,
                                    topic="orders/create", payload={}, status=status, attempts=attempts,
                                    last_error="PayloadError: orders/create has no usable 'id'")
    WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain="other.myshopify.com",
                                topic="orders/create", payload={}, status=EventStatus.FAILED, attempts=8)
    token = session_token(devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
    page = client.get("/admin/?" + urlencode({"id_token": token})).content.decode()
    assert "1 update from Shopify could not be applied" in page      # the other shop's is not counted
    assert "1 update failed and will be retried" in page
    assert "has no usable" in page
