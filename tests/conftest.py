"""Shared fixtures: devstore over real HTTP, unique shops, and the install flow a merchant runs.

Every test uses the real database (PostgreSQL under `make test`) and devstore as a real HTTP
server; nothing about Shopify is mocked.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import kombu.pools
import pytest
import redis
from django.db import connection

from devstore.config import DevstoreConfig
from devstore.server import DevstoreServer
from devstore.state import DevStore


@dataclass
class Devstore:
    server: DevstoreServer
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> DevStore:
        return self.server.app.store

    def control(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, f"{self.url}/_control{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def create_shop(self, plan: str = "shopify", currency: str = "USD") -> str:
        domain = f"t{uuid.uuid4().hex[:10]}.myshopify.com"
        self.control("POST", "/shops", json={"domain": domain, "plan": plan, "currency": currency,
                                              "iana_timezone": "America/New_York"})
        return domain


@pytest.fixture(scope="session")
def devstore_server(tmp_path_factory, django_db_setup):
    # (after django_db_setup, so stopped before the test database is dropped: see below)
    store = DevStore(tmp_path_factory.mktemp("devstore") / "devstore.db")
    server = DevstoreServer(store, DevstoreConfig(time_scale=0.001), port=0).start()
    yield server
    server.stop()
    # The live app's request threads end once the sender's keep-alive sockets are closed; they close
    # their database sessions then, which must happen before the test database is dropped.
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(5)


@pytest.fixture
def devstore(devstore_server, settings, request) -> Devstore:
    """devstore, with the app registered and the app's settings pointing at it."""
    settings.SHOPIFY_SHOP_BASE_URL = devstore_server.url + "/shops/{shop}"
    settings.SHOPSEG_APP_URL = "http://testserver"
    devstore_server.app.store.app_register(api_key=settings.SHOPIFY_API_KEY, api_secret=settings.SHOPIFY_API_SECRET,
                                           app_url="http://testserver/")
    with httpx.Client(timeout=30) as http:
        yield Devstore(server=devstore_server, http=http)
    if "live_server" in request.fixturenames:
        # Let devstore finish delivering to the live app before the test database is flushed: a
        # delivery arriving mid-flush deadlocks the flush's TRUNCATE against the live server's
        # transaction, and the test errors at teardown.
        devstore_server.app.sender.wait_idle(30)
        _other_transactions_end(timeout=30)


def _other_transactions_end(timeout: float) -> None:
    """Wait until no other session on the test database is inside a statement or a transaction: a
    delivery sent just before the sender went idle may still be applied by a live-server thread,
    and the teardown's flush would deadlock against it."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


def local(url: str) -> str:
    """An absolute app URL as the Django test client wants it (path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def run_install(client, devstore: Devstore, shop: str, api_key: str):
    """The merchant's click on "install", followed hop by hop between devstore and the app."""
    click = devstore.http.get(f"{devstore.url}/shops/{shop}/admin/_install/{api_key}")
    assert click.status_code == 302
    entry = client.get(local(click.headers["Location"]))
    assert entry.status_code == 302, entry.content[:300]
    authorize = devstore.http.get(entry["Location"])
    assert authorize.status_code == 302, authorize.text[:300]
    return client.get(local(authorize.headers["Location"]))


@pytest.fixture
def installed_shop(client, devstore, settings, django_capture_on_commit_callbacks):
    """A shop with shopseg installed through the real OAuth flow (post-install steps run)."""
    from segments.shops.models import Shop

    domain = devstore.create_shop()
    with django_capture_on_commit_callbacks(execute=True):
        response = run_install(client, devstore, domain, settings.SHOPIFY_API_KEY)
    assert response.status_code == 302
    return Shop.objects.get(domain=domain)


def install_live(devstore: Devstore, live_server, settings, *, customers: int = 0, seed: int = 1) -> tuple[str, str]:
    """Install on a fresh devstore shop with the app served by `live_server`, so devstore's webhooks
    and the embedded admin reach it over HTTP. Returns (shop domain, the admin URL the merchant lands on)."""
    settings.SHOPSEG_APP_URL = live_server.url
    settings.SHOPIFY_APP_BRIDGE_URL = f"{devstore.url}/cdn/app-bridge.js"
    devstore.store.app_register(api_key=settings.SHOPIFY_API_KEY, api_secret=settings.SHOPIFY_API_SECRET,
                                app_url=live_server.url + "/")
    domain = devstore.create_shop()
    if customers:
        devstore.control("POST", f"/shops/{domain}/seed", json={"customers": customers, "seed": seed})
    with httpx.Client(follow_redirects=True, timeout=30) as merchant:
        landed = merchant.get(f"{devstore.url}/shops/{domain}/admin/_install/{settings.SHOPIFY_API_KEY}")
    assert landed.status_code == 200, landed.text[:300]
    return domain, str(landed.url)


def settle(devstore: Devstore, shop_domain: str, timeout: float = 60) -> None:
    """Deliver everything devstore has queued and drain it, until the shop's history import (started
    at install, driven by its bulk_operations/finish webhooks, ending in a recompute of every segment
    in whichever thread ends it) has finished too, so nothing writes the mirror or membership behind
    the test's back. Once a second it also advances the backfill as the beat's poll does: a finish
    webhook processed before the backfill recorded its exports is not sent again."""
    from segments.mirror.backfill import backfill_advance
    from segments.mirror.models import BackfillStatus, ShopSync
    from webhooks.models import EventStatus, WebhookEvent
    from webhooks.services import webhook_events_drain

    deadline = time.monotonic() + timeout
    next_poll = time.monotonic() + 1
    while time.monotonic() < deadline:
        assert devstore.control("POST", "/webhooks/flush")["idle"]
        webhook_events_drain()
        sync = ShopSync.objects.filter(shop__domain=shop_domain).exclude(
            backfill_status__in=[BackfillStatus.DONE, BackfillStatus.FAILED]).first()
        if sync is None and not WebhookEvent.objects.filter(shop_domain=shop_domain,
                                                            status=EventStatus.PENDING).exists():
            return
        if sync is not None and time.monotonic() >= next_poll:
            backfill_advance(shop_id=sync.shop_id)
            next_poll = time.monotonic() + 1
        time.sleep(0.05)     # an export still running in devstore: its finish webhook is not queued yet
    raise AssertionError(f"{shop_domain} did not settle: its backfill or its deliveries are still going")


# -- a real broker --------------------------------------------------------------------------------
BROKER_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def celery_pools_reset() -> None:
    """Forget Celery's and kombu's pooled connections (the broker URL changed under them)."""
    from shopseg import celery_app

    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    kombu.pools.reset()
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker(settings):
    """This process publishes to Redis for real (no eager tasks); worker processes consume."""
    from shopseg import celery_app

    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    conf = celery_app.conf
    saved = {k: conf.get(k) for k in ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL")}
    conf.update(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=BROKER_URL)
    celery_pools_reset()
    settings.REDIS_URL = BROKER_URL
    yield client
    conf.update(saved)
    celery_pools_reset()
    client.flushdb()
