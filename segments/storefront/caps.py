"""Caps on what one browser and one shop may send: counters over fixed windows, in Redis when the
app has one (every web process shares them) and in this process otherwise (the embedded default
runs one). A batch over a cap is refused whole with a 429 and stores nothing."""
from __future__ import annotations

import threading
import time
from functools import lru_cache

import redis
from django.conf import settings

CLIENT_WINDOW_SECONDS = 10
SHOP_WINDOW_SECONDS = 1

_local: dict[str, tuple[int, int]] = {}     # key -> (window, count)
_local_lock = threading.Lock()


@lru_cache(maxsize=1)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _count(key: str, amount: int, window_seconds: int, now: float) -> int:
    """The counter of `key` in the current window after adding `amount`."""
    window = int(now // window_seconds)
    name = f"shopseg:pixel:{key}:{window}"
    if settings.REDIS_URL:
        try:
            pipe = _redis(settings.REDIS_URL).pipeline()
            pipe.incrby(name, amount)
            pipe.expire(name, window_seconds * 2)
            return int(pipe.execute()[0])
        except redis.RedisError:
            pass   # counted here instead: a cap that forgets is better than an endpoint that fails
    with _local_lock:
        seen, count = _local.get(key, (window, 0))
        count = (count if seen == window else 0) + amount
        _local[key] = (window, count)
        return count


def over_cap(*, shop_id: int, client_id: str, events: int, now: float | None = None) -> str | None:
    """Count a batch of `events` against its browser's and its shop's caps; the cap it breaks, or None."""
    now = time.time() if now is None else now
    if _count(f"c:{shop_id}:{client_id}", events, CLIENT_WINDOW_SECONDS, now) > settings.STOREFRONT_CLIENT_EVENTS:
        return f"this browser sent more than {settings.STOREFRONT_CLIENT_EVENTS} events in {CLIENT_WINDOW_SECONDS} s"
    if _count(f"s:{shop_id}", events, SHOP_WINDOW_SECONDS, now) > settings.STOREFRONT_SHOP_EVENTS_PER_SECOND:
        return f"this shop sent more than {settings.STOREFRONT_SHOP_EVENTS_PER_SECOND} events in a second"
    return None
