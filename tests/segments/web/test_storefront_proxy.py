"""GET /proxy/segments, as Shopify's app proxy forwards it (signed by devstore.app_proxy the way Shopify
signs): the shopper's segments for the theme's blocks. Only a request Shopify signed is answered;
held-out members, archived segments and other shops' shoppers are never in the answer."""
from __future__ import annotations

import time

import httpx
import pytest
from django.utils import timezone

from devstore.app_proxy import proxied_query, proxy_signature
from segments.membership.models import Membership, Segment, SegmentStatus, VisitorMembership
from segments.mirror.models import Customer
from segments.shops.models import Shop, ShopStatus
from segments.storefront.models import Visitor
from tests.serving import gunicorn_start, gunicorn_stop

pytestmark = pytest.mark.django_db
SHOP = "proxy-shop.myshopify.com"
URL = "/proxy/segments"


@pytest.fixture
def store(settings):
    """A shop with three segments, a customer in two (held out of one), an anonymous visitor in two
    (held out of one) and a browser joined to the customer."""
    settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS = "current-secret", "previous-secret"
    shop = Shop.objects.create(domain=SHOP)
    now = timezone.now()
    vip, browsers, archived = (Segment.objects.create(shop=shop, name=n, handle=n, status=s) for n, s in (
        ("vip", SegmentStatus.ACTIVE), ("window-shoppers", SegmentStatus.PAUSED), ("old", SegmentStatus.ARCHIVED)))
    customer = Customer.objects.create(shop=shop, shopify_id=7001)
    for segment, holdout in ((vip, False), (browsers, True), (archived, False)):
        Membership.objects.create(shop=shop, segment=segment, customer=customer, holdout=holdout, entered_at=now,
                                  version=1)
    anonymous = Visitor.objects.create(shop=shop, client_id="anon-1", first_seen_at=now, last_seen_at=now)
    for segment, holdout in ((browsers, False), (vip, True)):
        VisitorMembership.objects.create(segment=segment, visitor=anonymous, holdout=holdout, entered_at=now)
    Visitor.objects.create(shop=shop, client_id="known-1", first_seen_at=now, last_seen_at=now, customer=customer,
                           customer_shopify_id=7001)
    return shop


def ask(client, query: str = "", *, customer_id: int | None = None, secret: str = "current-secret",
        shop: str = SHOP, **kwargs):
    signed = proxied_query(query, shop=shop, customer_id=customer_id, path_prefix="/apps/shopseg", secret=secret,
                           **kwargs)
    return client.get(f"{URL}?{signed}")


@pytest.mark.parametrize("query, customer_id, tags", [
    ("client_id=anon-1", None, ["seg:window-shoppers"]),       # the visitor's, not the one it is held out of
    ("client_id=known-1", None, ["seg:vip"]),                   # a browser joined to a customer: theirs
    ("", 7001, ["seg:vip"]),                                    # logged in
    ("client_id=anon-1", 7001, ["seg:vip"]),                    # logged in wins over the browser
    ("client_id=never-seen", None, []),
    ("", None, []),
    ("", 99999, []),                                            # a customer the app does not know yet
], ids=["anonymous", "joined-browser", "logged-in", "logged-in-wins", "unknown-browser", "nobody", "unknown-customer"])
def test_the_shoppers_segments_without_those_held_out_or_archived(client, store, query, customer_id, tags):
    response = ask(client, query, customer_id=customer_id)
    assert response.status_code == 200, response.content
    assert response.json() == {"segments": tags}
    assert response["Cache-Control"] == "private, max-age=15"


def test_the_previous_secret_still_verifies_during_a_rotation(client, store):
    assert ask(client, "client_id=anon-1", secret="previous-secret").json() == {"segments": ["seg:window-shoppers"]}


@pytest.mark.parametrize("tamper", ["forged", "stale", "future", "two-shops", "unsigned", "customer-swapped"])
def test_a_request_shopify_did_not_sign_is_401_and_says_nothing(client, store, tamper):
    if tamper == "forged":
        response = ask(client, "client_id=anon-1", secret="not-the-secret")
    elif tamper in ("stale", "future"):
        response = ask(client, "client_id=anon-1", now=time.time() + (-120 if tamper == "stale" else 120))
    elif tamper == "two-shops":
        params = [("client_id", "anon-1"), ("shop", SHOP), ("shop", "other.myshopify.com"),
                  ("logged_in_customer_id", ""), ("path_prefix", "/apps/shopseg"), ("timestamp", str(int(time.time())))]
        query = "&".join(f"{k}={v}" for k, v in params)
        response = client.get(f"{URL}?{query}&signature={proxy_signature(params, 'current-secret')}")
    elif tamper == "unsigned":
        response = client.get(f"{URL}?client_id=anon-1&shop={SHOP}&timestamp={int(time.time())}")
    else:   # a logged-out request turned into the customer's by editing the query after signing
        signed = proxied_query("client_id=anon-1", shop=SHOP, customer_id=None, path_prefix="/apps/shopseg",
                               secret="current-secret")
        response = client.get(f"{URL}?{signed.replace('logged_in_customer_id=', 'logged_in_customer_id=7001')}")
    assert response.status_code == 401
    assert response.content == b"Unauthorized" and b"seg:" not in response.content


def test_another_shops_shopper_is_not_found_there(client, store):
    other = Shop.objects.create(domain="other-proxy.myshopify.com")
    Visitor.objects.create(shop=other, client_id="elsewhere", first_seen_at=timezone.now(),
                           last_seen_at=timezone.now())
    assert ask(client, "client_id=anon-1", shop=other.domain).json() == {"segments": []}


@pytest.mark.parametrize("case, status, code", [
    ("bad-client-id", 400, "invalid_client_id"),
    ("bad-customer-id", 400, "invalid_parameters"),
    ("uninstalled", 404, "shop_not_installed"),
    ("unknown-shop", 404, "shop_not_installed"),
])
def test_signed_requests_that_make_no_sense_get_a_clear_error(client, store, case, status, code):
    if case == "bad-client-id":
        response = ask(client, "client_id=<script>")
    elif case == "bad-customer-id":
        params = [("shop", SHOP), ("logged_in_customer_id", "someone"), ("path_prefix", "/apps/shopseg"),
                  ("timestamp", str(int(time.time())))]
        query = "&".join(f"{k}={v}" for k, v in params)
        response = client.get(f"{URL}?{query}&signature={proxy_signature(params, 'current-secret')}")
    elif case == "uninstalled":
        Shop.objects.filter(pk=store.pk).update(status=ShopStatus.UNINSTALLED)
        response = ask(client, "client_id=anon-1")
    else:
        response = ask(client, "client_id=anon-1", shop="nobody-here.myshopify.com")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response["Cache-Control"] == "no-store"


def test_only_get(client, store):
    assert client.post(f"{URL}?{proxied_query('', shop=SHOP, customer_id=None, path_prefix='/apps/shopseg', secret='current-secret')}").status_code == 405


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    server, url = gunicorn_start("redis://127.0.0.1:6379/11", env={
        "SHOPIFY_API_SECRET": "current-secret", "SHOPIFY_API_SECRET_PREVIOUS": "previous-secret"})
    yield url
    gunicorn_stop(server)


@pytest.mark.django_db(transaction=True)
def test_under_gunicorn_the_fast_path_answers_the_same(gunicorn, store):
    """Production serves the path in front of Django (ProxyFastPath), on its own connection."""
    signed = proxied_query("client_id=anon-1", shop=SHOP, customer_id=None, path_prefix="/apps/shopseg",
                           secret="current-secret")
    answer = httpx.get(f"{gunicorn}{URL}?{signed}", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"segments": ["seg:window-shoppers"]}
    assert answer.headers["Cache-Control"] == "private, max-age=15"
    logged_in = proxied_query("", shop=SHOP, customer_id=7001, path_prefix="/apps/shopseg", secret="previous-secret")
    assert httpx.get(f"{gunicorn}{URL}?{logged_in}", timeout=10).json() == {"segments": ["seg:vip"]}
    forged = proxied_query("client_id=anon-1", shop=SHOP, customer_id=7001, path_prefix="/apps/shopseg", secret="x")
    refused = httpx.get(f"{gunicorn}{URL}?{forged}", timeout=10)
    assert (refused.status_code, refused.text) == (401, "Unauthorized")
    Shop.objects.filter(pk=store.pk).update(status=ShopStatus.UNINSTALLED)
    gone = httpx.get(f"{gunicorn}{URL}?{signed}", timeout=10)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "shop_not_installed"
