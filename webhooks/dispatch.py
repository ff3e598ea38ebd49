"""Getting recorded deliveries processed: a cheap notify per delivery, one draining task per burst.

Publishing a Celery message for every delivery costs more than recording it. Instead each
delivery sets a short-lived Redis flag; only the delivery that sets it enqueues a drain task,
which processes everything pending in locked batches. The flag is cleared when the drain ends and
the queue is checked once more, so a delivery that commits meanwhile is never stranded; the
periodic sweeper is the safety net when Redis or the broker is down.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings

from shopseg.enqueue import enqueue

log = logging.getLogger(__name__)
DRAIN_FLAG = "shopseg:webhooks:drain-scheduled"
FLAG_SECONDS = 60   # if a drain task is lost, the next delivery after this schedules another


@lru_cache(maxsize=1)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def drain_schedule() -> None:
    """Called after a pending delivery commits."""
    from webhooks.tasks import webhook_events_drain_task

    if not settings.REDIS_URL:          # in-process mode: drain right here
        enqueue(webhook_events_drain_task)
        return
    try:
        if not _redis(settings.REDIS_URL).set(DRAIN_FLAG, "1", nx=True, ex=FLAG_SECONDS):
            return                      # a drain is scheduled or running; it will see this delivery
    except redis.RedisError as exc:
        log.warning("webhook drain flag unavailable (%s); the sweeper will process", type(exc).__name__)
        return
    if not enqueue(webhook_events_drain_task):
        drain_flag_clear()


def drain_flag_clear() -> None:
    if not settings.REDIS_URL:
        return
    try:
        _redis(settings.REDIS_URL).delete(DRAIN_FLAG)
    except redis.RedisError:
        pass  # the flag expires on its own
