"""Every task has its queue (one per kind of work), and a worker started without -Q consumes them all."""
from __future__ import annotations

import pytest

from shopseg.celery import app

EXPECTED = {
    "webhooks.tasks.webhook_events_drain_task": "webhooks",
    "webhooks.tasks.webhook_events_sweep_task": "webhooks",
    "segments.tasks.metrics.metrics_dirty_refresh_task": "membership",
    "segments.tasks.metrics.customer_metrics_rebuild_task": "membership",
    "segments.tasks.membership.segment_recompute_task": "membership",
    "segments.tasks.tags.tags_sync_sweep_task": "tags",
    "segments.tasks.shops.shop_post_install_task": "install",
    "segments.tasks.backfill.backfill_advance_task": "install",
    "segments.tasks.backfill.shop_reconcile_task": "install",
    "segments.tasks.kpis.kpi_snapshots_sweep_task": "measurement",
    "segments.tasks.compliance.retention_purge_task": "default",
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
