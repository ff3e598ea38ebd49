"""POST /webhooks/shopify: verify first, record once, answer fast; nothing lost, nothing doubled."""
import datetime as dt
import json
import uuid

import kombu.pools
import pytest

from segments.shops.models import ShopStatus
from shopseg import celery_app
from shopseg.shopify.signatures import webhook_hmac
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process, webhook_events_pending_due

pytestmark = pytest.mark.django_db


def post(client, settings, topic, shop, payload, *, secret=None, webhook_id=None, raw=None, **extra):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {
        "HTTP_X_SHOPIFY_TOPIC": topic, "HTTP_X_SHOPIFY_SHOP_DOMAIN": shop,
        "HTTP_X_SHOPIFY_WEBHOOK_ID": webhook_id or str(uuid.uuid4()), "HTTP_X_SHOPIFY_EVENT_ID": "e1",
        "HTTP_X_SHOPIFY_API_VERSION": "2026-10",
        "HTTP_X_SHOPIFY_TRIGGERED_AT": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "HTTP_X_SHOPIFY_HMAC_SHA256": webhook_hmac(body, secret or settings.SHOPIFY_API_SECRET),
    }
    headers.update(extra)
    return client.post("/webhooks/shopify", data=body, content_type="application/json", **headers)


def test_bad_signature_is_401_and_stores_nothing(client, settings):
    response = post(client, settings, "orders/create", "a.myshopify.com", {"id": 1}, secret="wrong")
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_missing_signature_is_401(client, settings):
    response = post(client, settings, "orders/create", "a.myshopify.com", {"id": 1},
                    HTTP_X_SHOPIFY_HMAC_SHA256="")
    assert response.status_code == 401 and WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("raw, extra", [
    (b"{not json", {}),
    (b"[1, 2]", {}),
    (b'{"id": 1}', {"HTTP_X_SHOPIFY_TOPIC": ""}),
    (b'{"id": 1}', {"HTTP_X_SHOPIFY_WEBHOOK_ID": ""}),
    (b'{"id": 1}', {"HTTP_X_SHOPIFY_SHOP_DOMAIN": "evil.com"}),
    (b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", {}),   # past PostgreSQL's stack while parsing jsonb
])
def test_malformed_is_400(client, settings, raw, extra):
    response = post(client, settings, "orders/create", "a.myshopify.com", None, raw=raw, **extra)
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_a_chunked_body_is_refused_when_the_server_does_not_end_its_stream():
    """Without `wsgi.input_terminated` reading to the end could wait on the connection: 411, nothing
    read. (A chunked body through gunicorn, which ends it, is read: test_receive_fastpath.py.)"""
    from shopseg.errors import Refused
    from webhooks.views import body_read

    with pytest.raises(Refused) as refused:
        body_read(headers={"Transfer-Encoding": "chunked"}, read=lambda n: pytest.fail("read"), terminated=False)
    assert refused.value.body() == {"error": {"code": "length_required", "message": "Content-Length required"}}
    assert refused.value.status_code == 411
    pieces = iter([b'{"id"', b": 1}", b""])
    assert body_read(headers={"Transfer-Encoding": "chunked"}, read=lambda n: next(pieces), terminated=True) == (
        b'{"id": 1}')


def test_oversized_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(client, settings, "orders/create", "a.myshopify.com", {"blob": "x" * 2000})
    assert response.status_code == 413 and WebhookEvent.objects.count() == 0


def test_previous_secret_verifies_during_rotation(client, settings):
    settings.SHOPIFY_API_SECRET_PREVIOUS = "old-secret-" + "x" * 30
    response = post(client, settings, "shop/update", "a.myshopify.com", {"id": 1},
                    secret=settings.SHOPIFY_API_SECRET_PREVIOUS)
    assert response.status_code == 200


def test_duplicate_delivery_is_200_and_recorded_once(client, settings):
    webhook_id = str(uuid.uuid4())
    for _ in range(3):
        assert post(client, settings, "unknown/topic", "a.myshopify.com", {"id": 1},
                    webhook_id=webhook_id).status_code == 200
    assert WebhookEvent.objects.filter(webhook_id=webhook_id).count() == 1


def test_unknown_topic_is_recorded_as_ignored(client, settings):
    assert post(client, settings, "made/up", "a.myshopify.com", {"id": 1}).status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.IGNORED


def test_app_uninstalled_drops_tokens(client, settings, installed_shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, settings, "app/uninstalled", installed_shop.domain, {"id": 1})
    assert response.status_code == 200
    installed_shop.refresh_from_db()
    assert installed_shop.status == ShopStatus.UNINSTALLED and installed_shop.access_token is None
    event = WebhookEvent.objects.get()
    assert event.status == EventStatus.PROCESSED and event.attempts == 1
    assert webhook_event_process(event_pk=event.pk) == "skipped"  # a second run does nothing


def _reset_producer_pool():
    """Forget every cached broker connection, so the next publish connects to the current URL."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    kombu.pools.reset()
    celery_app.amqp._producer_pool = None


BROKER_KEYS = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "CELERY_BROKER_CONNECTION_RETRY",
               "CELERY_BROKER_CONNECTION_MAX_RETRIES")


@pytest.fixture
def dead_broker():
    """Celery configured against a broker port nobody listens on (a real connection failure).

    Keys carry the CELERY_ namespace: un-prefixed ones would lose to Django's settings.
    """
    conf = celery_app.conf
    saved = {key: conf.get(key) for key in BROKER_KEYS}
    conf.update(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL="redis://127.0.0.1:1/0",
                CELERY_BROKER_CONNECTION_RETRY=False, CELERY_BROKER_CONNECTION_MAX_RETRIES=0)
    _reset_producer_pool()
    yield
    conf.update(saved)
    _reset_producer_pool()


@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:6379/15", "redis://127.0.0.1:1/0"])
def test_dead_broker_or_redis_still_records_and_answers(client, settings, installed_shop, dead_broker, redis_url,
                                                        django_capture_on_commit_callbacks):
    settings.REDIS_URL = redis_url
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, settings, "app/uninstalled", installed_shop.domain, {"id": 1})
    assert response.status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.PENDING
    assert webhook_events_pending_due()   # the sweeper will pick it up
    installed_shop.refresh_from_db()
    assert installed_shop.status == "installed"   # nothing was processed


@pytest.mark.parametrize("triggered", ["2026-13-45T10:00:00Z", "yesterday"])
def test_an_unreadable_triggered_at_header_is_dropped_and_the_delivery_kept(client, settings, triggered):
    response = post(client, settings, "orders/create", "a.myshopify.com", {"id": 1},
                    HTTP_X_SHOPIFY_TRIGGERED_AT=triggered)
    assert response.status_code == 200
    assert WebhookEvent.objects.get().triggered_at is None
