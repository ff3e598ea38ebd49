"""Getting recorded deliveries processed: a cheap notify per delivery, a draining task per lane and burst.

Publishing a Celery message for every delivery costs more than recording it. Instead each
delivery sets short-lived Redis flags; only a delivery that sets one enqueues a drain task, which
processes everything pending in its lane in locked batches. The flag is cleared when the drain ends and
the queue is checked once more, so a delivery that commits meanwhile is never stranded.

Up to WEBHOOK_DRAINS drains run at once (a worker's processes; default 2), one per slot, each
with its own flag, each applying its own lane of the deliveries: those about its share of the
customers (webhooks.services.FAIR_BATCH_SQL). A burst is applied by every process, and two drains
never touch the same customer, so they neither wait on nor deadlock each other. A delivery
schedules a drain for every slot that has none.

Each flag lives FLAG_SECONDS and a running drain renews it after every batch, so it outlives a
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


# By name: the tasks module imports this one.
DRAIN_TASK = "webhooks.tasks.webhook_events_drain_task"


def drain_flag(slot: int) -> str:
    return DRAIN_FLAG if slot == 0 else f"{DRAIN_FLAG}:{slot}"


def drain_flags() -> list[str]:
    return [drain_flag(slot) for slot in range(settings.WEBHOOK_DRAINS)]


def drain_schedule() -> None:
    """Called after a pending delivery commits, and by the sweeper when deliveries are due: every
    slot without a drain scheduled or running gets one (the delivery may be in any lane)."""
    if not settings.REDIS_URL:          # in-process mode: drain every lane right here
        enqueue(DRAIN_TASK)
        return
    for slot, flag in enumerate(drain_flags()):
        try:
            if not _redis(settings.REDIS_URL).set(flag, "1", nx=True, ex=FLAG_SECONDS):
                continue                # this slot's drain is scheduled or running; it will see the delivery
        except redis.RedisError as exc:
            log.warning("webhook drain flag unavailable (%s); the sweeper will process", type(exc).__name__)
            return
        if not enqueue(DRAIN_TASK, slot):
            drain_flag_clear(slot)


def drain_flag_renew(slot: int = 0) -> None:
    """A running drain is still alive: keep other deliveries from scheduling another in its slot."""
    if not settings.REDIS_URL:
        return
    try:
        _redis(settings.REDIS_URL).set(drain_flag(slot), "1", ex=FLAG_SECONDS)
    except redis.RedisError:
        pass  # deliveries may schedule another drain meanwhile; SKIP LOCKED keeps them apart


def drain_flag_clear(slot: int = 0) -> None:
    if not settings.REDIS_URL:
        return
    try:
        _redis(settings.REDIS_URL).delete(drain_flag(slot))
    except redis.RedisError:
        pass  # the flag expires on its own
