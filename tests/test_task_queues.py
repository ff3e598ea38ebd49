"""Every task has its queue (one per kind of work), and a worker started without -Q consumes them all."""
from __future__ import annotations

import pytest

from shopseg.celery import app

EXPECTED = {
    "webhooks.tasks.webhook_events_drain_task": "webhooks",
    "webhooks.tasks.webhook_events_sweep_task": "webhooks",
    "segments.metrics.tasks.metrics_dirty_refresh_task": "membership",
    "segments.metrics.tasks.customer_metrics_rebuild_task": "membership",
    "segments.membership.tasks.segment_recompute_task": "membership",
    "segments.tags.tasks.tags_sync_sweep_task": "tags",
    "segments.experiences.tasks.flow_triggers_sweep_task": "tags",
    "segments.shops.tasks.shop_post_install_task": "install",
    "segments.mirror.tasks.backfill_advance_task": "install",
    "segments.mirror.tasks.shop_reconcile_task": "install",
    "segments.measurement.tasks.kpi_snapshots_sweep_task": "measurement",
    "segments.privacy.tasks.retention_purge_task": "default",
}


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize("task_name, queue", EXPECTED.items())
def test_each_kind_of_work_has_its_queue(task_name, queue):
    app.loader.import_default_modules()
    assert task_name in app.tasks
    assert queue_of(task_name) == queue


def test_a_worker_without_q_consumes_every_queue_a_task_is_routed_to():
    app.loader.import_default_modules()
    consumed = set(app.amqp.queues)     # without -Q a worker consumes every declared queue
    routed = {queue_of(name) for name in app.tasks if not name.startswith("celery.")}
    assert routed <= consumed and {"webhooks", "membership", "tags", "install", "measurement"} <= routed


def test_a_message_queued_under_a_task_s_old_name_still_finds_its_task():
    """Tasks moved into domain packages: what was queued (or scheduled) before a deploy still runs."""
    app.loader.import_default_modules()
    assert app.tasks["segments.tasks.tags.tags_sync_sweep_task"] is app.tasks["segments.tags.tasks.tags_sync_sweep_task"]
    assert app.tasks["segments.tasks.backfill.backfill_advance_task"] is app.tasks[
        "segments.mirror.tasks.backfill_advance_task"]
    assert "segments.tasks.tags.no_such_task" not in app.tasks
