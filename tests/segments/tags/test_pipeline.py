"""The whole pipeline as production runs it: devstore delivers webhooks to the app (live_server), a
real Celery worker and beat on Redis drain them into the mirror, refresh dirty customers'
memberships, and sync the outbox to devstore. An order makes a tag appear; a second order (the
customer leaves "one order") makes it go; the merchant's tag stays throughout. A worker killed
while its requests are in flight is replaced, and the sync completes with nothing duplicated."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from devstore import mutations
from segments.membership.definitions import segment_create
from segments.membership.models import TagChange
from segments.shops.models import Shop
from segments.tags.models import TagAudit
from tests.conftest import BROKER_URL, install_live
from tests.segments.tags.conftest import ONE_ORDER
from tests.webhooks.test_worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[3]


class Processes:
    def __init__(self, env: dict):
        self.env, self.children = env, []

    def start(self, *args: str) -> subprocess.Popen:
        child = subprocess.Popen([str(Path(sys.executable).parent / "celery"), "-A", "shopseg", *args,
                                  "--loglevel", "WARNING"], cwd=ROOT, env=self.env, start_new_session=True,
                                 stdout=subprocess.DEVNULL)
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen, sig=signal.SIGTERM) -> None:
        if child.poll() is None:
            os.killpg(child.pid, sig)
            child.wait(timeout=30)


@pytest.fixture
def app(devstore, live_server, settings, broker, tmp_path):
    """A live shop with a worker (prefork, 2) and beat (1 s dirty refresh and tag sweep)."""
    domain, _ = install_live(devstore, live_server, settings)
    db = connection.settings_dict
    env = dict(os.environ, REDIS_URL=BROKER_URL, SHOPSEG_LOG_LEVEL="WARNING", SHOPSEG_APP_URL=live_server.url,
               SHOPIFY_SHOP_BASE_URL=settings.SHOPIFY_SHOP_BASE_URL, SHOPSEG_DIRTY_REFRESH_SECONDS="1",
               SHOPSEG_TAG_SYNC_SECONDS="1",
               DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
                            f"{db['PORT'] or 5432}/{db['NAME']}")
    processes = Processes(env)
    processes.worker = processes.start("worker", "--concurrency", "2")
    processes.start("beat", "--schedule", str(tmp_path / "beat-schedule"))
    # the post-install task (run by the worker) subscribes the webhooks
    assert wait_until(lambda: len(devstore.control("GET", f"/shops/{domain}/webhooks")["subscriptions"]) > 5,
                      timeout=60)
    processes.shop = Shop.objects.get(domain=domain)
    yield processes
    for child in processes.children:
        processes.stop(child)
    devstore.control("DELETE", "/faults")


def tags(devstore, domain: str, sid: int) -> list[str]:
    return devstore.control("GET", f"/shops/{domain}/customers/{sid}/tags")["tags"]


def variant(devstore, domain: str) -> int:
    product = mutations.product_create(devstore.store, domain, title="Tea", product_type="Tea", vendor="Leaf",
                                       variants=[{"title": "Default", "price_cents": 1200}])
    return devstore.store.conn().execute("SELECT id FROM variants WHERE product_id = ?", (product,)).fetchone()[0]


def test_an_order_in_devstore_puts_the_tag_on_and_a_second_takes_it_off(devstore, app):
    domain, store = app.shop.domain, devstore.store
    sku = variant(devstore, domain)
    segment_create(shop=app.shop, name="One order", rules=ONE_ORDER)
    customer = mutations.customer_create(store, domain, first_name="Ada", email="ada@example.com",
                                         tags=["merchant"])
    time.sleep(2)      # the customer's own deliveries first, as a shopper signs up before buying
    mutations.order_create(store, domain, line_items=[{"variant_id": sku, "quantity": 1}], customer_id=customer)
    assert wait_until(lambda: tags(devstore, domain, customer) == ["merchant", "seg:one-order"], timeout=60), \
        tags(devstore, domain, customer)
    mutations.order_create(store, domain, line_items=[{"variant_id": sku, "quantity": 1}], customer_id=customer)
    assert wait_until(lambda: tags(devstore, domain, customer) == ["merchant"], timeout=60)
    # two changes, each applied once; our own echoes queued nothing more
    time.sleep(3)
    assert list(TagAudit.objects.filter(shop=app.shop).order_by("pk").values_list("add", "result")) == [
        (True, "applied"), (False, "applied")]
    assert not TagChange.objects.filter(shop=app.shop, processed_at__isnull=True).exists()


def test_a_worker_killed_mid_sync_is_replaced_and_nothing_is_lost_or_duplicated(devstore, app):
    domain, store = app.shop.domain, devstore.store
    sku = variant(devstore, domain)
    customers = [mutations.customer_create(store, domain, email=f"k{n}@example.com") for n in range(12)]
    time.sleep(2)
    # every GraphQL call takes 1.5 s and carries 2 mutations, so the sync of 12 customers is in flight for a while
    app.env["SHOPSEG_TAG_SYNC_MAX_MUTATIONS"] = "2"
    app.stop(app.worker)
    app.worker = app.start("worker", "--concurrency", "2")
    devstore.control("POST", "/faults", json={"shop": domain, "kind": "latency", "params": {"ms": 1500}})
    segment_create(shop=app.shop, name="One order", rules=ONE_ORDER)
    for customer in customers:
        mutations.order_create(store, domain, line_items=[{"variant_id": sku, "quantity": 1}],
                               customer_id=customer)
    # when the worker is killed (no goodbye) after the first confirmed change, mid-sync
    assert wait_until(lambda: TagAudit.objects.filter(shop=app.shop).exists(), timeout=90)
    app.stop(app.worker, signal.SIGKILL)
    done = TagAudit.objects.filter(shop=app.shop).count()
    assert done < 12, "the kill landed after the sync finished"
    devstore.control("POST", "/faults", json={"shop": domain, "kind": "latency", "params": None})
    app.worker = app.start("worker", "--concurrency", "2")
    # then a new worker (once the dead run's flag expires) finishes: every tag once, no row left
    assert wait_until(lambda: all("seg:one-order" in tags(devstore, domain, c) for c in customers), timeout=120)
    assert wait_until(lambda: not TagChange.objects.filter(shop=app.shop, processed_at__isnull=True).exists(),
                      timeout=30)
    assert TagAudit.objects.filter(shop=app.shop, result="applied").count() == 12
    assert sorted(TagAudit.objects.filter(shop=app.shop).values_list("customer_shopify_id", flat=True)) == sorted(
        customers)
