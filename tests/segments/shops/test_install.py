"""Installing through OAuth against devstore over real HTTP: the happy path and every refusal."""
import datetime as dt
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client

from segments.shops.install import shop_uninstall
from segments.shops.models import OAuthState, Shop, ShopStatus
from segments.shops.subscriptions import WEBHOOK_TOPICS, webhook_subscriptions_reconcile
from shopseg.shopify.signatures import query_hmac
from tests.conftest import local, run_install
from tests.webhooks.test_receive import post
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_drain

pytestmark = pytest.mark.django_db


def signed(settings, **params):
    params.setdefault("timestamp", str(int(time.time())))
    lists = {k: [v] for k, v in params.items()}
    return urlencode({**params, "hmac": query_hmac(lists, settings.SHOPIFY_API_SECRET)})


def subscriptions(devstore, shop):
    return devstore.control("GET", f"/shops/{shop}/webhooks")["subscriptions"]


def test_install_stores_encrypted_expiring_tokens_and_sets_up_the_shop(installed_shop, devstore, settings):
    shop = installed_shop
    assert shop.status == ShopStatus.INSTALLED
    assert shop.access_token.startswith("shpat_") and shop.refresh_token.startswith("shprt_")
    assert shop.access_token_expires_at and shop.refresh_token_expires_at
    assert {"read_customers", "write_customers", "read_orders", "read_products"} <= shop.granted_scopes
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM segments_shop WHERE id = %s", [shop.pk])
        raw_access, raw_refresh = cursor.fetchone()
    assert shop.access_token not in raw_access and shop.refresh_token not in raw_refresh
    # shop details came from the GraphQL API
    assert shop.currency == "USD" and shop.iana_timezone == "America/New_York" and shop.plan_name
    assert shop.shopify_gid.startswith("gid://shopify/Shop/")
    subs = subscriptions(devstore, shop.domain)
    assert sorted(s["topic"] for s in subs) == sorted(WEBHOOK_TOPICS)
    assert {s["uri"] for s in subs} == {"http://testserver/webhooks/shopify"}


def test_reconcile_is_idempotent_and_repairs(installed_shop, devstore):
    again = webhook_subscriptions_reconcile(shop_id=installed_shop.pk)
    assert again.created == () and again.deleted == ()
    victim = subscriptions(devstore, installed_shop.domain)[0]
    with devstore.store.tx() as conn:
        conn.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (victim["id"],))
    repaired = webhook_subscriptions_reconcile(shop_id=installed_shop.pk)
    assert repaired.created == (victim["topic"],)
    assert len(subscriptions(devstore, installed_shop.domain)) == len(WEBHOOK_TOPICS)


def test_callback_redirects_into_the_embedded_app(client, devstore, settings, django_capture_on_commit_callbacks):
    domain = devstore.create_shop()
    with django_capture_on_commit_callbacks(execute=True):
        response = run_install(client, devstore, domain, settings.SHOPIFY_API_KEY)
    assert response["Location"] == f"{devstore.url}/shops/{domain}/admin/apps/{settings.SHOPIFY_API_KEY}"
    admin = devstore.http.get(response["Location"])
    assert admin.status_code == 200 and "id_token=" in admin.text


def test_authorize_redirect_asks_for_the_right_things(client, devstore, settings):
    domain = devstore.create_shop()
    response = client.get("/?" + signed(settings, shop=domain, host="abc"))
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    query = dict(parse_qsl(target.query))
    assert target.path == f"/shops/{domain}/admin/oauth/authorize"
    assert query["client_id"] == settings.SHOPIFY_API_KEY
    assert query["scope"] == ("read_customers,write_customers,read_orders,read_products,write_pixels,"
                              "read_customer_events,write_app_proxy,read_discounts,write_discounts,read_all_orders")
    assert query["redirect_uri"] == "http://testserver/auth/callback"
    assert OAuthState.objects.filter(nonce=query["state"], shop=domain, used_at__isnull=True).exists()
    cookie = response.cookies["shopseg_oauth"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


@pytest.mark.parametrize("tamper", ["bad_hmac", "stale", "future", "bad_shop", "no_hmac_sig"])
def test_install_request_refusals_store_nothing(client, devstore, settings, tamper):
    domain = devstore.create_shop()
    params = {"shop": domain, "timestamp": str(int(time.time()))}
    if tamper == "stale":
        params["timestamp"] = str(int(time.time()) - 2 * 24 * 3600)
    if tamper == "future":
        params["timestamp"] = str(int(time.time()) + 3600)
    if tamper == "bad_shop":
        params["shop"] = "evil.com"
    query = signed(settings, **params)
    if tamper == "bad_hmac":
        query = query.replace("hmac=", "hmac=0")
    if tamper == "no_hmac_sig":
        query = urlencode({**params, "hmac": "x" * 64})
    response = client.get("/?" + query)
    assert response.status_code == 400
    assert OAuthState.objects.count() == 0 and Shop.objects.count() == 0


def test_array_parameters_are_verified(client, devstore, settings):
    domain = devstore.create_shop()
    ts = str(int(time.time()))
    lists = {"ids[]": ["1", "2"], "shop": [domain], "timestamp": [ts]}
    query = urlencode([("ids[]", "1"), ("ids[]", "2"), ("shop", domain), ("timestamp", ts),
                       ("hmac", query_hmac(lists, settings.SHOPIFY_API_SECRET))])
    assert client.get("/?" + query).status_code == 302
    tampered = query.replace("ids%5B%5D=2", "ids%5B%5D=3")
    assert client.get("/?" + tampered).status_code == 400


def _callback_query(client, devstore, domain):
    """Start an install and stop before the callback: returns the callback URL devstore sent."""
    click = devstore.http.get(f"{devstore.url}/shops/{domain}/admin/_install/{client.api_key}")
    entry = client.get(local(click.headers["Location"]))
    authorize = devstore.http.get(entry["Location"])
    return local(authorize.headers["Location"])


@pytest.fixture
def api_client(client, settings):
    client.api_key = settings.SHOPIFY_API_KEY
    return client


def test_state_is_single_use(api_client, devstore, django_capture_on_commit_callbacks):
    domain = devstore.create_shop()
    callback = _callback_query(api_client, devstore, domain)
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.get(callback).status_code == 302
    tokens_before = Shop.objects.get(domain=domain).access_token
    assert api_client.get(callback).status_code == 403       # replayed
    assert Shop.objects.get(domain=domain).access_token == tokens_before


def test_state_is_bound_to_the_browser(api_client, devstore):
    domain = devstore.create_shop()
    callback = _callback_query(api_client, devstore, domain)
    other_browser = Client()
    assert other_browser.get(callback).status_code == 403
    assert not Shop.objects.filter(domain=domain).exists()


def test_expired_state_is_refused(api_client, devstore):
    domain = devstore.create_shop()
    callback = _callback_query(api_client, devstore, domain)
    OAuthState.objects.update(created_at=OAuthState.objects.get().created_at.replace(year=2020))
    assert api_client.get(callback).status_code == 403
    assert not Shop.objects.filter(domain=domain).exists()


def test_unknown_state_and_forged_callback(api_client, devstore, settings):
    domain = devstore.create_shop()
    callback = _callback_query(api_client, devstore, domain)
    params = dict(parse_qsl(urlsplit(callback).query))
    unknown = {**params, "state": "nope"}
    unknown.pop("hmac")
    unknown["hmac"] = query_hmac({k: [v] for k, v in unknown.items()}, settings.SHOPIFY_API_SECRET)
    assert api_client.get("/auth/callback?" + urlencode(unknown)).status_code == 403
    forged = {**params, "code": "stolen"}
    assert api_client.get("/auth/callback?" + urlencode(forged)).status_code == 400
    assert not Shop.objects.filter(domain=domain).exists()


def test_reinstall_after_uninstall(client, devstore, settings, installed_shop, django_capture_on_commit_callbacks):
    old_token = installed_shop.access_token
    assert shop_uninstall(domain=installed_shop.domain)
    installed_shop.refresh_from_db()
    assert installed_shop.status == ShopStatus.UNINSTALLED and installed_shop.access_token is None
    assert installed_shop.refresh_token is None
    devstore.control("POST", f"/shops/{installed_shop.domain}/uninstall/{settings.SHOPIFY_API_KEY}")
    with django_capture_on_commit_callbacks(execute=True):
        response = run_install(client, devstore, installed_shop.domain, settings.SHOPIFY_API_KEY)
    assert response.status_code == 302
    installed_shop.refresh_from_db()
    assert installed_shop.status == ShopStatus.INSTALLED and installed_shop.access_token != old_token
    assert installed_shop.uninstalled_at is None
    assert len(subscriptions(devstore, installed_shop.domain)) == len(WEBHOOK_TOPICS)


def test_a_late_app_uninstalled_does_not_undo_a_reinstall(client, devstore, settings, installed_shop,
                                                           django_capture_on_commit_callbacks):
    # The merchant uninstalls; the delivery is recorded but waits in line (a backlog: no drain ran),
    domain = installed_shop.domain
    before = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert post(client, settings, "app/uninstalled", domain, {"domain": domain},
                HTTP_X_SHOPIFY_TRIGGERED_AT=before).status_code == 200
    assert post(client, settings, "app/uninstalled", domain, {"domain": domain},
                HTTP_X_SHOPIFY_TRIGGERED_AT="").status_code == 200     # no time given: its receipt counts
    time.sleep(1.5)                 # an uninstall within a second of the grant would still count
    # and reinstalls through OAuth before either is processed (the app learned of the uninstall by
    # another path first); Shopify retries an old delivery after that.
    devstore.control("POST", f"/shops/{domain}/uninstall/{settings.SHOPIFY_API_KEY}")
    Shop.objects.filter(domain=domain).update(status=ShopStatus.UNINSTALLED)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_install(client, devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
    assert post(client, settings, "app/uninstalled", domain, {"domain": domain},
                HTTP_X_SHOPIFY_TRIGGERED_AT=before).status_code == 200
    fresh_token = Shop.objects.get(domain=domain).access_token

    webhook_events_drain()

    shop = Shop.objects.get(domain=domain)
    assert shop.status == ShopStatus.INSTALLED and shop.access_token == fresh_token and fresh_token
    assert set(WebhookEvent.objects.filter(topic="app/uninstalled").values_list("status", flat=True)) == {
        EventStatus.PROCESSED}
    # An uninstall after the reinstall is a real one.
    post(client, settings, "app/uninstalled", domain, {"domain": domain},
         HTTP_X_SHOPIFY_TRIGGERED_AT=(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).strftime(
             "%Y-%m-%dT%H:%M:%SZ"))
    webhook_events_drain()
    shop.refresh_from_db()
    assert shop.status == ShopStatus.UNINSTALLED and shop.access_token is None


def test_installed_shop_opening_the_app_url_goes_to_the_admin(client, devstore, settings, installed_shop):
    response = client.get("/?" + signed(settings, shop=installed_shop.domain))
    assert response.status_code == 302
    assert response["Location"].endswith(f"/shops/{installed_shop.domain}/admin/apps/{settings.SHOPIFY_API_KEY}")
