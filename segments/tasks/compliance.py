"""Celery entry points for privacy compliance and data retention."""
from __future__ import annotations

from celery import shared_task

from segments.services.compliance import webhook_payloads_purge


@shared_task(acks_late=True)
def retention_purge_task() -> int:
    """Hourly (beat): blank raw webhook payloads past their shop's retention. Re-running is harmless."""
    return webhook_payloads_purge()


__all__ = ["retention_purge_task"]
