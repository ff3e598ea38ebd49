"""Draining: a task per drain slot and burst, nothing stranded, retries wait for their time, workers share."""
import datetime as dt
import json
import uuid

import pytest
import redis
from django.utils import timezone

from tests.webhooks.test_receive import post
from webhooks.dispatch import DRAIN_FLAG, FLAG_SECONDS, drain_flag, drain_flags, drain_schedule
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_drain
from webhooks.tasks import webhook_events_drain_task, webhook_events_sweep_task

pytestmark = pytest.mark.django_db
REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def flags(settings):
    settings.REDIS_URL = REDIS
    client = redis.Redis.from_url(REDIS)
    client.delete(*drain_flags())
    yield client
    client.delete(*drain_flags())


def event(topic="app/uninstalled", shop="gone.myshopify.com", **kw):
    return WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop, topic=topic,
                                       payload={"id": 1}, **kw)


def test_delivery_sets_the_flag_drains_and_clears_it(client, settings, flags, installed_shop,
                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, settings, "app/uninstalled", installed_shop.domain, {"id": 1}).status_code == 200
    assert WebhookEvent.objects.get().status == EventStatus.PROCESSED
    assert not flags.exists(DRAIN_FLAG)


def test_while_every_drain_slot_is_taken_a_delivery_only_records(client, settings, flags, installed_shop,
                                                                   django_capture_on_commit_callbacks):
    for flag in drain_flags():
        flags.set(flag, "1")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, settings, "app/uninstalled", installed_shop.domain, {"id": 1})
    assert WebhookEvent.objects.get().status == EventStatus.PENDING      # the scheduled drain will take it
    assert webhook_events_drain_task() == 1
    assert WebhookEvent.objects.get().status == EventStatus.PROCESSED
    assert not flags.exists(DRAIN_FLAG)


def test_a_delivery_while_one_drain_runs_schedules_the_second_slot(settings, flags, monkeypatch):
    from webhooks import dispatch

    settings.WEBHOOK_DRAINS = 2
    enqueued = []
    monkeypatch.setattr(dispatch, "enqueue", lambda task, *args: enqueued.append(args) or True)
    flags.set(DRAIN_FLAG, "1")                      # the first slot's drain is running

    drain_schedule()
    assert enqueued == [(1,)] and flags.exists(drain_flag(1))
    drain_schedule()                                # both running: nothing more
    assert enqueued == [(1,)]


def test_drain_skips_retries_that_are_not_due_and_sweeper_picks_them_up(settings):
    later = event(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    due = event()
    assert webhook_events_drain() == 1
    later.refresh_from_db()
    due.refresh_from_db()
    assert due.status == EventStatus.PROCESSED and later.status == EventStatus.PENDING
    assert webhook_events_sweep_task() is False
    WebhookEvent.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now())
    assert webhook_events_sweep_task() is True     # in-process mode: drained right away
    later.refresh_from_db()
    assert later.status == EventStatus.PROCESSED


def test_a_shops_burst_does_not_hold_up_another_shops_deliveries(settings):
    busy = [event(shop="busy.myshopify.com") for _ in range(250)]
    quiet = [event(shop="quiet.myshopify.com") for _ in range(3)]     # recorded after the whole burst
    after_each_batch = []

    def heartbeat():
        done = WebhookEvent.objects.exclude(status=EventStatus.PENDING)
        after_each_batch.append((done.filter(shop_domain="busy.myshopify.com").count(),
                                 done.filter(shop_domain="quiet.myshopify.com").count()))

    assert webhook_events_drain(batch=100, heartbeat=heartbeat) == 253

    assert after_each_batch == [(50, 3), (150, 3), (250, 3)]   # two shops: half a batch each
    assert not WebhookEvent.objects.filter(pk__in=[e.pk for e in busy + quiet], status=EventStatus.PENDING).exists()


def test_a_running_drain_keeps_its_flag_and_the_sweeper_waits_for_it(settings, flags):
    pending = event()
    for flag in drain_flags():                     # the drains renewed their flags after their last batch
        flags.set(flag, "1", ex=FLAG_SECONDS)

    webhook_events_sweep_task()

    pending.refresh_from_db()
    assert pending.status == EventStatus.PENDING and pending.attempts == 0    # left to the running drains
    flags.delete(DRAIN_FLAG)                       # one died: its flag runs out within FLAG_SECONDS
    assert webhook_events_sweep_task() is True     # in-process mode: drained right away
    pending.refresh_from_db()
    assert pending.status == EventStatus.PROCESSED


def test_the_drain_task_renews_its_flag_after_each_batch(settings, flags, monkeypatch):
    from webhooks import tasks

    for _ in range(3):
        event()
    ttls = []
    drain = tasks.webhook_events_drain
    monkeypatch.setattr(tasks, "webhook_events_drain", lambda heartbeat, **options: drain(
        **options, batch=1, heartbeat=lambda: (heartbeat(), ttls.append(flags.ttl(DRAIN_FLAG)))))

    assert webhook_events_drain_task() == 3

    assert len(ttls) == 3 and all(0 < ttl <= FLAG_SECONDS for ttl in ttls)
    assert not flags.exists(DRAIN_FLAG)


def test_a_failing_handler_does_not_block_the_batch(settings, monkeypatch):
    from webhooks import handlers

    def boom(shop, payload):
        raise RuntimeError("mirror unavailable")

    monkeypatch.setitem(handlers.HANDLERS, "test/boom", boom)
    bad, good = event(topic="test/boom"), event()
    assert webhook_events_drain() == 2
    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.status == EventStatus.PROCESSED
    assert bad.status == EventStatus.PENDING and bad.attempts == 1 and "mirror unavailable" in bad.last_error
    assert bad.next_attempt_at > timezone.now()
    assert webhook_events_drain() == 0             # not due yet: no busy loop


def test_payload_postgres_cannot_store_is_400(client, settings):
    raw = json.dumps({"id": 1, "note": "\u0000"}).encode()
    response = post(client, settings, "app/uninstalled", "a.myshopify.com", None, raw=raw)
    assert response.status_code == 400      # PostgreSQL's jsonb refuses it
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("raw, error", [(b'{"id": 1e5000}', "ValueError"),           # 5,001 digits back from jsonb
                                        (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "RecursionError")],
                         ids=["huge-number", "deep-nesting"])
def test_a_payload_python_cannot_read_fails_alone_and_the_drain_goes_on(client, settings, installed_shop, raw,
                                                                        error):
    # PostgreSQL stores it (the body is valid JSON, signed), but loading it in Python raises
    assert post(client, settings, "customers/update", installed_shop.domain, None, raw=raw).status_code == 200
    post(client, settings, "customers/update", installed_shop.domain,
         {"id": 42, "email": "x@example.com", "updated_at": "2026-11-20T10:00:00Z"})
    unreadable, good = WebhookEvent.objects.order_by("pk").defer("payload")
    assert webhook_events_drain() == 2
    unreadable.refresh_from_db(fields=["status", "last_error", "attempts"])
    good.refresh_from_db(fields=["status"])
    assert (unreadable.status, unreadable.attempts) == (EventStatus.FAILED, 1)
    assert unreadable.last_error == f"payload unreadable: {error}"
    assert good.status == EventStatus.PROCESSED
    assert webhook_events_drain() == 0                       # nothing stays in line to crash the next drain
