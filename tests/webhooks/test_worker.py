"""A real Celery worker on Redis: deliveries are drained by it, and killing it mid-batch loses
and duplicates nothing (the batch's transaction rolls back; the sweeper hands it to another once
the dead drain's flag has expired, seconds later)."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from segments.mirror.models import LineItem, Order
from segments.shops.models import Shop
from tests.conftest import BROKER_URL
from tests.webhooks.test_receive import post
from webhooks.dispatch import FLAG_SECONDS, drain_flags
from webhooks.models import EventStatus, WebhookEvent
from webhooks.tasks import webhook_events_sweep_task

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "bench" / "order_sample.json").read_text())


def start_worker() -> subprocess.Popen:
    db = connection.settings_dict
    env = dict(os.environ, REDIS_URL=BROKER_URL, SHOPSEG_LOG_LEVEL="WARNING",
               DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                            f"{db['NAME']}")
    return subprocess.Popen([str(Path(sys.executable).parent / "celery"), "-A", "shopseg", "worker", "--pool", "solo",
                             "--concurrency", "1", "--loglevel", "WARNING"],
                            cwd=ROOT, env=env, start_new_session=True)


def stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=30)


def wait_until(predicate, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def deliver_orders(client, settings, shop: str, count: int) -> None:
    for n in range(count):
        payload = {**SAMPLE, "id": 5_900_000_000 + n, "name": f"#{9000 + n}",
                   "line_items": [{**item, "id": 19_000_000_000 + n * 10 + i}
                                  for i, item in enumerate(SAMPLE["line_items"])]}
        assert post(client, settings, "orders/create", shop, payload).status_code == 200


def pending() -> int:
    return WebhookEvent.objects.filter(status=EventStatus.PENDING).count()


@pytest.fixture
def shop():
    return Shop.objects.create(domain=f"w{uuid.uuid4().hex[:8]}.myshopify.com", access_token="shpat_x",
                               scopes="read_orders,read_customers,read_products")


def test_worker_drains_what_the_endpoint_records(client, settings, broker, shop):
    worker = start_worker()
    try:
        deliver_orders(client, settings, shop.domain, 30)
        assert wait_until(lambda: pending() == 0), f"{pending()} deliveries still pending"
        # every drain scheduled meanwhile (one per slot) runs, finds nothing more and clears its flag
        assert wait_until(lambda: not broker.exists(*drain_flags()))
    finally:
        stop(worker)
    assert Order.objects.filter(shop=shop).count() == 30
    assert WebhookEvent.objects.filter(status=EventStatus.PROCESSED).count() == 30


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(client, settings, broker, shop):
    for flag in drain_flags():                  # hold processing back while the deliveries arrive
        broker.set(flag, "1")
    deliver_orders(client, settings, shop.domain, 400)
    broker.delete(*drain_flags())
    items_per_order = len(SAMPLE["line_items"])
    worker = start_worker()
    try:
        webhook_events_sweep_task.delay()       # what beat does every second
        assert wait_until(lambda: WebhookEvent.objects.filter(status=EventStatus.PROCESSED).exists())
    finally:
        stop(worker, signal.SIGKILL)            # no goodbye: the batch in flight is cut off
    processed = WebhookEvent.objects.filter(status=EventStatus.PROCESSED).count()
    assert 0 < processed < 400, "the kill landed after the drain finished; use more deliveries"
    # the cut-off batch rolled back as a whole: exactly the processed deliveries left rows
    assert Order.objects.filter(shop=shop).count() == processed
    assert LineItem.objects.filter(shop=shop).count() == processed * items_per_order

    # The dead drain's flag (renewed after each batch) runs out by itself, and then the sweeper,
    # which beat runs every second, schedules a new drain; nobody has to clear anything by hand.
    assert 0 < max(broker.ttl(flag) for flag in drain_flags()) <= FLAG_SECONDS
    second = start_worker()

    def swept_and_drained() -> bool:
        webhook_events_sweep_task.delay()
        return pending() == 0

    try:
        assert wait_until(swept_and_drained, timeout=120), f"{pending()} deliveries still pending"
    finally:
        stop(second)
    assert Order.objects.filter(shop=shop).count() == 400
    assert LineItem.objects.filter(shop=shop).count() == 400 * items_per_order
    assert WebhookEvent.objects.filter(status=EventStatus.PROCESSED, attempts=1).count() == 400
