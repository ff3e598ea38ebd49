"""POST /webhooks/shopify as production serves it: gunicorn running shopseg.wsgi, where
webhooks.fastpath answers the path in front of Django. Every receiving case of test_receive.py, over
real HTTP, plus what only the fast path has (its own connection, the hand-off to Django)."""
from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from segments.shops.models import Shop, ShopStatus
from shopseg.shopify.signatures import webhook_hmac
from tests.serving import gunicorn_start, gunicorn_stop
from webhooks.dispatch import drain_flags
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)   # gunicorn's connections see only committed rows
ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/11"
MAX_BODY = 64 * 1024
PREVIOUS_SECRET = "previous-secret-" + "y" * 30
SAMPLE = (ROOT / "bench" / "order_sample.json").read_bytes()
ENV = {"SHOPIFY_API_SECRET_PREVIOUS": PREVIOUS_SECRET, "SHOPSEG_MAX_BODY_BYTES": str(MAX_BODY)}


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    """shopseg.wsgi under gunicorn (the production entry point, fast path included) on the test database."""
    server, url = gunicorn_start(REDIS, env=ENV)
    yield url
    gunicorn_stop(server)


@pytest.fixture(scope="module")
def gunicorn_django(django_db_setup, django_db_blocker):
    """Django alone under gunicorn (no fast path): the view every deployment without it serves."""
    server, url = gunicorn_start(REDIS, app="django.core.wsgi:get_wsgi_application()", env=ENV)
    yield url
    gunicorn_stop(server)


@pytest.fixture(scope="module")
def gunicorn_dead_redis(django_db_setup, django_db_blocker):
    server, url = gunicorn_start("redis://127.0.0.1:1/0", env=ENV)   # nothing listens there: Redis and the broker are down
    yield url
    gunicorn_stop(server)


@pytest.fixture
def flag():
    client = redis.Redis.from_url(REDIS)
    client.delete(*drain_flags())
    yield client
    client.flushdb()


def deliver(url, topic, shop, body: bytes, *, secret=None, webhook_id=None, headers=None, path="/webhooks/shopify",
            method="POST", chunked=False):
    sent = {
        "Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()), "X-Shopify-Event-Id": "e1",
        "X-Shopify-API-Version": "2026-10", "X-Shopify-Triggered-At": "2026-11-20T10:00:00Z",
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret or settings.SHOPIFY_API_SECRET),
    }
    sent.update(headers or {})
    # a generator is sent with Transfer-Encoding: chunked and no Content-Length, one chunk per piece
    content = (body[i:i + 1000] for i in range(0, len(body), 1000)) if chunked else body
    return httpx.request(method, url + path, content=content,
                         headers={k: v for k, v in sent.items() if v is not None}, timeout=10)


def _eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_bad_signature_is_401_and_stores_nothing(gunicorn):
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}', secret="wrong")
    assert response.status_code == 401 and response.json() == {"error": {"code": "invalid_signature",
                                                                         "message": "invalid signature"}}
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("hmac_header", ["", None, "not base64 at all"])
def test_missing_or_garbled_signature_is_401(gunicorn, hmac_header):
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}',
                       headers={"X-Shopify-Hmac-Sha256": hmac_header})
    assert response.status_code == 401 and WebhookEvent.objects.count() == 0


def test_signature_is_checked_before_the_body_is_looked_at(gunicorn):
    """Malformed JSON with a bad signature is a 401, not a 400: nothing is parsed before the HMAC."""
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b"{not json", secret="wrong")
    assert response.status_code == 401


@pytest.mark.parametrize("raw, headers", [
    (b"{not json", {}),
    (b"[1, 2]", {}),
    (b'"a string"', {}),
    (b"", {}),
    (b'{"note": "\\u0000"}', {}),            # JSON, but not JSON PostgreSQL can store
    (b'{"id": 1}\xff', {}),                    # not UTF-8
    (b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", {}),   # past PostgreSQL's stack while parsing jsonb
    (b'{"id": 1}', {"X-Shopify-Topic": ""}),
    (b'{"id": 1}', {"X-Shopify-Topic": None}),
    (b'{"id": 1}', {"X-Shopify-Webhook-Id": ""}),
    (b'{"id": 1}', {"X-Shopify-Shop-Domain": "evil.com"}),
    (b'{"id": 1}', {"X-Shopify-Shop-Domain": None}),
    (b'{"id": 1}', {"X-Shopify-Topic": "x" * 101}),
])
def test_malformed_is_400_and_stores_nothing(gunicorn, raw, headers):
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", raw, headers=headers)
    assert response.status_code == 400, response.text
    assert "error" in response.json()
    assert WebhookEvent.objects.count() == 0


def test_not_an_object_is_400_even_when_the_id_was_seen(gunicorn):
    webhook_id = str(uuid.uuid4())
    assert deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}', webhook_id=webhook_id).status_code == 200
    assert deliver(gunicorn, "orders/create", "a.myshopify.com", b"[1]", webhook_id=webhook_id).status_code == 400
    assert WebhookEvent.objects.count() == 1


def test_oversized_is_413_and_stores_nothing(gunicorn):
    body = json.dumps({"blob": "x" * MAX_BODY}).encode()
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", body)
    assert response.status_code == 413 and WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("server", ["gunicorn", "gunicorn_django"])
def test_a_chunked_body_is_read_whole(server, request):
    """Shopify may send a body chunked (Transfer-Encoding: chunked, no Content-Length): it is read,
    verified and recorded like any other, by the fast path and by Django's view."""
    url = request.getfixturevalue(server)
    shop = Shop.objects.create(domain=f"s{uuid.uuid4().hex[:10]}.myshopify.com", access_token="shpat_x",
                               scopes="read_orders")
    response = deliver(url, "orders/create", shop.domain, SAMPLE, chunked=True, webhook_id="chunked-1")
    assert response.status_code == 200, response.text
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.status, event.payload) == ("chunked-1", EventStatus.PENDING, json.loads(SAMPLE))
    assert len(SAMPLE) > 1000          # it did travel in several chunks


@pytest.mark.parametrize("server", ["gunicorn", "gunicorn_django"])
def test_a_chunked_body_is_capped_as_a_sized_one(server, request):
    url = request.getfixturevalue(server)
    body = json.dumps({"blob": "x" * MAX_BODY}).encode()
    response = deliver(url, "orders/create", "a.myshopify.com", body, chunked=True)
    assert response.status_code == 413 and WebhookEvent.objects.count() == 0
    # the largest body allowed still goes through
    fits = json.dumps({"blob": "x" * (MAX_BODY - 20)}).encode()
    fits += b" " * (MAX_BODY - len(fits))
    assert deliver(url, "orders/create", "a.myshopify.com", fits, chunked=True).status_code == 200


@pytest.mark.parametrize("server", ["gunicorn", "gunicorn_django"])
def test_a_chunked_body_with_a_bad_signature_is_401(server, request):
    url = request.getfixturevalue(server)
    response = deliver(url, "orders/create", "a.myshopify.com", SAMPLE, chunked=True, secret="wrong")
    assert response.status_code == 401 and WebhookEvent.objects.count() == 0


def test_previous_secret_verifies_during_rotation(gunicorn):
    response = deliver(gunicorn, "shop/update", "a.myshopify.com", b'{"id": 1}', secret=PREVIOUS_SECRET)
    assert response.status_code == 200 and WebhookEvent.objects.count() == 1


def test_duplicate_delivery_is_200_and_recorded_once(gunicorn):
    webhook_id = str(uuid.uuid4())
    for _ in range(3):
        assert deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}',
                       webhook_id=webhook_id).status_code == 200
    assert WebhookEvent.objects.filter(webhook_id=webhook_id).count() == 1


@pytest.mark.parametrize("triggered", ["2026-13-45T10:00:00Z", "yesterday"])
def test_an_unreadable_triggered_at_header_is_dropped_and_the_delivery_kept(gunicorn, triggered):
    # the header is not signed: an authentic body is recorded, without the time
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}',
                       headers={"X-Shopify-Triggered-At": triggered})
    assert response.status_code == 200
    assert WebhookEvent.objects.get().triggered_at is None


def test_unknown_topic_is_recorded_as_ignored(gunicorn):
    assert deliver(gunicorn, "made/up", "a.myshopify.com", b'{"id": 1}').status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.IGNORED


@pytest.mark.parametrize("status", [None, ShopStatus.UNINSTALLED])
def test_unknown_or_uninstalled_shop_is_recorded_as_ignored(gunicorn, flag, status):
    domain = f"s{uuid.uuid4().hex[:10]}.myshopify.com"
    if status:
        Shop.objects.create(domain=domain, access_token="shpat_x", scopes="read_orders", status=status)
    assert deliver(gunicorn, "orders/create", domain, SAMPLE).status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.IGNORED
    time.sleep(0.2)
    assert not flag.exists(*drain_flags())      # nothing to process, nothing scheduled


def test_installed_shop_delivery_is_stored_as_sent_and_processing_is_scheduled(gunicorn, flag):
    shop = Shop.objects.create(domain=f"s{uuid.uuid4().hex[:10]}.myshopify.com", access_token="shpat_x",
                               scopes="read_orders")
    response = deliver(gunicorn, "orders/create", shop.domain.upper(), SAMPLE, webhook_id="w-1")
    assert response.status_code == 200 and response.content == b""
    assert "X-Frame-Options" not in response.headers        # answered by the fast path, not Django's middleware
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.shop_domain, event.topic, event.status) == (
        "w-1", shop.domain, "orders/create", EventStatus.PENDING)
    assert event.payload == json.loads(SAMPLE)
    assert (event.event_id, event.api_version, event.triggered_at.isoformat()) == (
        "e1", "2026-10", "2026-11-20T10:00:00+00:00")
    # a drain per lane was scheduled after the commit: one task each on the broker, in their queue
    assert _eventually(lambda: flag.exists(*drain_flags()) == len(drain_flags()) == 2)
    assert _eventually(lambda: flag.llen("webhooks") == 2)


def test_the_api_version_and_a_deprecation_are_recorded(gunicorn):
    reason = "API version 2026-01 is deprecated"
    assert deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}',
                   headers={"X-Shopify-API-Version": "2026-01",
                            "X-Shopify-API-Deprecated-Reason": reason}).status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.api_version, event.api_deprecated_reason) == ("2026-01", reason)


def test_app_uninstalled_is_always_pending(gunicorn, flag):
    domain = f"s{uuid.uuid4().hex[:10]}.myshopify.com"
    assert deliver(gunicorn, "app/uninstalled", domain, b'{"id": 1}').status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.PENDING


def test_dead_redis_and_broker_still_record_and_answer(gunicorn_dead_redis):
    shop = Shop.objects.create(domain=f"s{uuid.uuid4().hex[:10]}.myshopify.com", access_token="shpat_x",
                               scopes="read_orders")
    response = deliver(gunicorn_dead_redis, "orders/create", shop.domain, SAMPLE)
    assert response.status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.PENDING     # the sweeper will drain it


def test_a_dropped_database_connection_is_replaced_without_failing_a_delivery(gunicorn):
    assert deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}').status_code == 200
    with connection.cursor() as cursor:   # kill every connection gunicorn holds to the test database
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    for _ in range(4):   # whichever thread takes them, each finds its connection dead and reconnects
        assert deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 2}').status_code == 200
    assert WebhookEvent.objects.count() == 5


# -- what the fast path hands to Django ------------------------------------------------------------------
def test_other_methods_go_to_django(gunicorn):
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b"", method="GET")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.headers["X-Frame-Options"] == "DENY"     # Django's middleware ran


def test_a_host_django_refuses_is_refused(gunicorn):
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}', headers={"Host": "evil.example"})
    assert response.status_code == 400 and WebhookEvent.objects.count() == 0


def test_other_paths_go_to_django(gunicorn):
    response = deliver(gunicorn, "orders/create", "a.myshopify.com", b'{"id": 1}', path="/webhooks/shopify/")
    assert response.status_code == 404 and WebhookEvent.objects.count() == 0


def test_concurrent_deliveries_share_commits_and_a_refused_one_fails_alone(gunicorn):
    """Deliveries that arrive together may be committed in one transaction (webhooks.group_commit);
    every valid one is still answered 200 only once recorded, and a non-object body among them is
    a 400 that stores nothing and costs the others nothing."""
    shop = Shop.objects.create(domain=f"s{uuid.uuid4().hex[:10]}.myshopify.com", access_token="shpat_x",
                               scopes="read_orders").domain
    ids = [str(uuid.uuid4()) for _ in range(40)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sent = [pool.submit(deliver, gunicorn, "orders/create", shop, SAMPLE, webhook_id=wid) for wid in ids[:20]]
        bad = pool.submit(deliver, gunicorn, "orders/create", shop, b"[1, 2]", webhook_id="not-an-object")
        sent += [pool.submit(deliver, gunicorn, "orders/create", shop, SAMPLE, webhook_id=wid) for wid in ids[20:]]
        good = [f.result().status_code for f in sent]
    assert good == [200] * 40 and bad.result().status_code == 400
    assert WebhookEvent.objects.filter(webhook_id__in=ids).count() == 40
    assert not WebhookEvent.objects.filter(webhook_id="not-an-object").exists()


def test_the_recording_statement_is_prepared_once_per_connection(settings):
    """The fast path's insert is parsed and planned once per connection, not once per delivery
    (Django's connection parameters turn psycopg's prepared statements off unless told otherwise)."""
    from io import BytesIO

    from shopseg.fastpath import FastPaths
    from webhooks.fastpath import WebhookFastPath

    handler = WebhookFastPath()
    app = FastPaths(lambda environ, start_response: pytest.fail("handed to Django"),
                    {("POST", "/webhooks/shopify"): handler})
    settings.ALLOWED_HOSTS = ["testserver"]
    for n in range(3):
        body = json.dumps({"id": n}).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/shopify", "HTTP_HOST": "testserver",
                   "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": BytesIO(body),
                   "HTTP_X_SHOPIFY_TOPIC": "orders/create", "HTTP_X_SHOPIFY_SHOP_DOMAIN": "a.myshopify.com",
                   "HTTP_X_SHOPIFY_WEBHOOK_ID": f"prepared-{n}",
                   "HTTP_X_SHOPIFY_HMAC_SHA256": webhook_hmac(body, settings.SHOPIFY_API_SECRET)}
        statuses = []
        app(environ, lambda status, headers: statuses.append(status))
        assert statuses == ["200 OK"]
    recorder = handler.connection.cursor()[0].connection
    try:
        prepared = recorder.execute("SELECT generic_plans + custom_plans FROM pg_prepared_statements").fetchall()
    finally:
        recorder.close()
    assert prepared == [(3,)]
    assert WebhookEvent.objects.count() == 3
