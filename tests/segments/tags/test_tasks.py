"""Tag sync's tasks and its resync: the sweep runs every shop with due changes (in-process here),
one run per shop is queued through a Redis flag, and a changed prefix re-tags through the diff."""
from __future__ import annotations

import os

import pytest
import redis

from segments.shops.models import Shop
from segments.tags import schedule as tag_schedule
from segments.tags import tasks as tag_tasks
from segments.tags.models import TagAudit
from segments.tags.plans import shop_tags_resync
from segments.tags.sync import shop_tags_sync
from tests.segments.tags.conftest import BUYERS

pytestmark = pytest.mark.django_db


def test_the_sweep_syncs_shops_with_due_changes(tagstore):
    (a,) = tagstore.customers(1)
    tagstore.order(a)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    # in-process mode (no REDIS_URL): the sweep runs the shop's sync right away
    assert tag_tasks.tags_sync_sweep_task() == 1
    assert tagstore.tags(a) == ["seg:buyers"]
    assert tag_tasks.tags_sync_sweep_task() == 0


def test_one_run_per_shop_is_queued(settings, monkeypatch):
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(url).flushdb()
    settings.REDIS_URL = url
    queued = []
    monkeypatch.setattr(tag_schedule, "enqueue", lambda task, *args: queued.append(args) or True)
    assert tag_schedule.tags_sync_schedule(41) and not tag_schedule.tags_sync_schedule(41)
    assert tag_schedule.tags_sync_schedule(42)
    assert queued == [(41,), (42,)]
    tag_schedule.schedule_clear(41)
    assert tag_schedule.tags_sync_schedule(41)


def test_the_sync_task_of_an_uninstalled_shop_does_nothing(tagstore):
    Shop.objects.filter(pk=tagstore.shop.pk).update(status="uninstalled")
    assert tag_tasks.shop_tags_sync_task(tagstore.shop.pk) is None


def test_a_changed_prefix_retags_everyone_through_the_diff(tagstore):
    a, b = tagstore.customers(2, tags=["merchant"])
    tagstore.order(a)
    tagstore.order(b)
    tagstore.segment("buyers", BUYERS)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    # when the merchant moves to another prefix
    Shop.objects.filter(pk=tagstore.shop.pk).update(tag_prefix="aud:")
    tagstore.shop.refresh_from_db()
    assert shop_tags_resync(shop=tagstore.shop) == 2
    report = shop_tags_sync(shop_id=tagstore.shop.pk)
    # then the old tags (ours, in the ledger) go and the new ones come, in one request
    assert tagstore.tags(a) == ["merchant", "aud:buyers"] and tagstore.tags(b) == ["merchant", "aud:buyers"]
    assert (report.calls, report.requests) == (4, 1)
    assert TagAudit.objects.filter(shop=tagstore.shop, add=False, tag="seg:buyers", source="resync").count() == 2
