"""Celery entry points for webhooks: process one event; sweep what was never enqueued or is due."""
from __future__ import annotations

from celery import shared_task

from shopseg.enqueue import enqueue
from webhooks.services import webhook_event_process, webhook_events_due


@shared_task(acks_late=True)
def webhook_event_process_task(event_pk: int) -> str:
    return webhook_event_process(event_pk=event_pk)


@shared_task
def webhook_events_sweep_task() -> int:
    due = webhook_events_due()
    for pk in due:
        enqueue(webhook_event_process_task, pk)
    return len(due)
