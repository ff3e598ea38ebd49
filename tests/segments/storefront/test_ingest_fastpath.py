"""POST /storefront/events as production serves it: gunicorn running shopseg.wsgi, where
segments.web.storefront_ingest.StorefrontFastPath answers the pixel's batches in front of Django,
on a connection of its own with the storing statement prepared."""
from __future__ import annotations

import datetime as dt
import json
from io import BytesIO
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from segments.shops.models import Shop, ShopStatus
from segments.storefront.models import Pixel, StorefrontEvent, Visitor, VisitorDayDirty
from segments.web.storefront_ingest import StorefrontFastPath
from shopseg.fastpath import FastPaths
from tests.segments.storefront.conftest import SHOP, URL, batch, event
from tests.serving import gunicorn_start, gunicorn_stop

pytestmark = pytest.mark.django_db(transaction=True)   # gunicorn's connections see only committed rows
REDIS = "redis://127.0.0.1:6379/11"


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    server, url = gunicorn_start(REDIS)
    yield url
    gunicorn_stop(server)


@pytest.fixture
def shop_pixel(db) -> Pixel:
    return Pixel.objects.create(shop=Shop.objects.create(domain=SHOP, iana_timezone="America/New_York"))


def send(url: str, body, **headers) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url + URL, content=raw, headers={"Content-Type": "text/plain;charset=UTF-8",
                                                       "Origin": "https://pixel-shop.myshopify.com", **headers},
                      timeout=10)


def nothing_stored() -> bool:
    return (not StorefrontEvent.objects.exists() and not Visitor.objects.exists()
            and not VisitorDayDirty.objects.exists())


def test_a_batch_is_stored_with_its_visitor_and_its_days_in_the_shops_calendar(gunicorn, shop_pixel):
    events = [event("page_viewed", seq=0), event("product_viewed", seq=1, data={"productId": "7"}),
              event("product_added_to_cart", seq=2, data={"productId": "7", "quantity": 2, "amount": 19.5})]
    response = send(gunicorn, batch(shop_pixel, events))
    assert response.status_code == 202, response.text
    assert response.json() == {"received": 3, "stored": 3}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    visitor = Visitor.objects.get()
    assert (visitor.shop_id, visitor.client_id) == (shop_pixel.shop_id, "client-1")
    stored = StorefrontEvent.objects.order_by("seq")
    assert [(e.name, e.visitor_id, e.day) for e in stored] == [
        (e["name"], visitor.pk, dt.datetime.fromisoformat(e["timestamp"]).astimezone(dt.timezone.utc).date()) for e in events]
    assert stored[2].data == {"productId": "7", "quantity": 2, "amount": 19.5}
    local_day = timezone.localtime(stored[0].occurred_at, timezone=ZoneInfo("America/New_York")).date()
    assert list(VisitorDayDirty.objects.values_list("visitor_id", "day")) == [(visitor.pk, local_day)]
    assert send(gunicorn, batch(shop_pixel, events)).json() == {"received": 3, "stored": 0}   # sent again


@pytest.mark.parametrize("change, status, code", [
    ({"key": "not-a-key"}, 403, "unknown_key"),
    ({"shop": "another-shop.myshopify.com"}, 403, "wrong_shop"),
    ({"analytics": False}, 400, "invalid_batch"),
], ids=["unknown-key", "other-shop", "no-consent"])
def test_a_refused_batch_stores_nothing(gunicorn, shop_pixel, change, status, code):
    response = send(gunicorn, {**batch(shop_pixel, [event()]), **change})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert nothing_stored()


@pytest.mark.parametrize("raw, status", [
    (b"{not json", 400), (b"[" * 5000 + b"]" * 5000, 400), (b"x" * (65 * 1024), 413), (b"", 400),
], ids=["malformed", "deeply-nested", "oversized", "empty"])
def test_malformed_nested_and_oversized_bodies_are_refused(gunicorn, shop_pixel, raw, status):
    assert send(gunicorn, raw).status_code == status
    assert nothing_stored()


def test_a_shop_that_uninstalls_takes_no_more_events_though_its_key_was_just_used(gunicorn, shop_pixel):
    """The fast path keeps a key's shop for a few seconds to count caps; the storing statement still
    checks the key, the shop and the install on every batch."""
    assert send(gunicorn, batch(shop_pixel, [event(client="before")])).status_code == 202
    Shop.objects.filter(pk=shop_pixel.shop_id).update(status=ShopStatus.UNINSTALLED)
    response = send(gunicorn, batch(shop_pixel, [event(client="after")]))
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_installed"
    assert list(Visitor.objects.values_list("client_id", flat=True)) == ["before"]
    assert StorefrontEvent.objects.count() == 1


def test_a_regenerated_key_refuses_the_old_one_at_once(gunicorn, shop_pixel):
    old = batch(shop_pixel, [event(client="old-key")])
    assert send(gunicorn, old).status_code == 202
    Pixel.objects.filter(pk=shop_pixel.pk).update(ingest_key="a-new-key-for-the-shop")
    response = send(gunicorn, {**old, "events": [event(client="old-key-again")]})
    assert response.status_code == 403 and response.json()["error"]["code"] == "unknown_key"
    assert StorefrontEvent.objects.count() == 1


def test_connections_that_died_are_replaced(gunicorn, shop_pixel):
    assert send(gunicorn, batch(shop_pixel, [event(client="first")])).status_code == 202
    with connection.cursor() as cursor:   # kill every connection gunicorn holds to the test database
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    for n in range(4):   # whichever thread takes them, each finds its connection dead and reconnects
        assert send(gunicorn, batch(shop_pixel, [event(client=f"after-{n}")])).status_code == 202
    assert StorefrontEvent.objects.count() == 5


def test_the_storing_statement_is_prepared_once_per_connection(settings, shop_pixel):
    handler = StorefrontFastPath()
    app = FastPaths(lambda environ, start_response: pytest.fail("handed to Django"), {("POST", URL): handler})
    settings.ALLOWED_HOSTS = ["testserver"]
    for n in range(3):
        body = json.dumps(batch(shop_pixel, [event(client=f"prepared-{n}")])).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": URL, "HTTP_HOST": "testserver",
                   "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": BytesIO(body)}
        statuses = []
        app(environ, lambda status, headers: statuses.append(status))
        assert statuses == ["202 Accepted"]
    own = handler.connection.cursor()[0].connection
    try:
        prepared = own.execute("SELECT generic_plans + custom_plans FROM pg_prepared_statements "
                               "WHERE statement LIKE '%%INSERT INTO segments_storefrontevent%%'").fetchall()
    finally:
        own.close()
    assert prepared == [(3,)]
    assert StorefrontEvent.objects.count() == 3
