"""Getting recorded deliveries processed: a cheap notify per delivery, one draining task per burst.

Publishing a Celery message for every delivery costs more than recording it. Instead each
delivery sets a short-lived Redis flag; only the delivery that sets it enqueues a drain task,
which processes everything pending in locked batches. The flag is cleared when the drain ends and
the queue is checked once more, so a delivery that commits meanwhile is never stranded.

The flag lives FLAG_SECONDS and a running drain renews it after every batch, so it outlives a
drain only briefly: when a worker is killed mid-drain (its task message comes back only after the
broker's visibility timeout, an hour), the flag is gone seconds later and the sweeper, every few
seconds, schedules a new drain. It is also the safety net when Redis or the broker was down.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings

from shopseg.enqueue import enqueue

log = logging.getLogger(__name__)
DRAIN_FLAG = "shopseg:webhooks:drain-scheduled"
FLAG_SECONDS = 4    # a drain renews it after each batch; a lost drain's flag is gone this long after


@lru_cache(maxsize=1)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def drain_schedule() -> None:
    """Called after a pending delivery commits, and by the sweeper when deliveries are due."""
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


def drain_flag_renew() -> None:
    """A running drain is still alive: keep other deliveries from scheduling another."""
    if not settings.REDIS_URL:
        return
    try:
        _redis(settings.REDIS_URL).set(DRAIN_FLAG, "1", ex=FLAG_SECONDS)
    except redis.RedisError:
        pass  # deliveries may schedule a second drain meanwhile; SKIP LOCKED keeps the two apart


def drain_flag_clear() -> None:
    if not settings.REDIS_URL:
        return
    try:
        _redis(settings.REDIS_URL).delete(DRAIN_FLAG)
    except redis.RedisError:
        pass  # the flag expires on its own
