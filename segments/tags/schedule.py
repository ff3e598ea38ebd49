"""At most one tag sync run queued or running per shop: a short-lived Redis flag set when a run is
queued and cleared when it ends (a run lost with its worker is queued again once the flag expires)."""
from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings

from shopseg.enqueue import enqueue

log = logging.getLogger(__name__)
SCHEDULED = "shopseg:tags:scheduled:{shop_id}"
SCHEDULED_SECONDS = 60     # a run lost with its worker is scheduled again after this (runs end sooner)


@lru_cache(maxsize=1)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def tags_sync_schedule(shop_id: int) -> bool:
    """Queue one sync run for the shop unless one is queued or running (a short-lived Redis flag)."""
    if settings.REDIS_URL:
        try:
            if not _redis(settings.REDIS_URL).set(SCHEDULED.format(shop_id=shop_id), "1", nx=True,
                                                  ex=SCHEDULED_SECONDS):
                return False
        except redis.RedisError as exc:
            log.warning("tag sync flag unavailable (%s); queueing anyway", type(exc).__name__)
    return enqueue("segments.tags.tasks.shop_tags_sync_task", shop_id)


def schedule_clear(shop_id: int) -> None:
    if settings.REDIS_URL:
        try:
            _redis(settings.REDIS_URL).delete(SCHEDULED.format(shop_id=shop_id))
        except redis.RedisError:
            pass   # the flag expires on its own
