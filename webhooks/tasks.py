"""Celery entry points for webhooks: drain pending deliveries; sweep what is due."""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from webhooks.dispatch import drain_flag_clear, drain_flag_renew, drain_schedule
from webhooks.services import Lane, webhook_events_drain, webhook_events_pending_due

# A drain task hands its process back this often, rescheduling itself while its lane has work: with
# every process of a worker draining a burst, the dirty refresh and tag sync queued meanwhile get
# their turn within about a second instead of after a long drain.
TASK_BUDGET = dt.timedelta(seconds=1)


@shared_task(acks_late=True)
def webhook_events_drain_task(slot: int | None = None) -> int:
    """Drain slot `slot`'s lane (webhooks.dispatch); every lane without a slot (in-process mode)."""
    slot = slot if slot is not None and slot < settings.WEBHOOK_DRAINS else None
    lane = Lane() if slot is None else Lane(number=slot, of=settings.WEBHOOK_DRAINS)
    done = webhook_events_drain(heartbeat=lambda: drain_flag_renew(slot or 0), lane=lane, budget=TASK_BUDGET)
    drain_flag_clear(slot or 0)
    if webhook_events_pending_due(lane):    # committed while we were finishing, or over the time budget
        drain_schedule()
    return done


@shared_task
def webhook_events_sweep_task() -> bool:
    """Every few seconds: retries that came due, deliveries whose notify never reached the broker,
    and the work of a drain that died with its worker (its flag expired; see webhooks.dispatch)."""
    if webhook_events_pending_due():
        drain_schedule()
        return True
    return False
