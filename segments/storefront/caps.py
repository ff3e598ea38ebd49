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


def _counts(counters: list[tuple[str, int]], amount: int, now: float) -> list[int]:
    """Each (key, window seconds) counter in its current window after adding `amount`: one Redis
    round trip for all of them."""
    names = [(f"shopseg:pixel:{key}:{int(now // seconds)}", key, seconds) for key, seconds in counters]
    if settings.REDIS_URL:
        try:
            pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
            for name, _, seconds in names:
                pipe.incrby(name, amount)
                pipe.expire(name, seconds * 2)
            return [int(n) for n in pipe.execute()[::2]]
        except redis.RedisError:
            pass   # counted here instead: a cap that forgets is better than an endpoint that fails
    counts = []
    with _local_lock:
        for _, key, seconds in names:
            window = int(now // seconds)
            seen, count = _local.get(key, (window, 0))
            count = (count if seen == window else 0) + amount
            _local[key] = (window, count)
            counts.append(count)
    return counts


def over_cap(*, shop_id: int, client_id: str, events: int, now: float | None = None) -> str | None:
    """Count a batch of `events` against its browser's and its shop's caps; the cap it breaks, or None."""
    now = time.time() if now is None else now
    client, shop = _counts([(f"c:{shop_id}:{client_id}", CLIENT_WINDOW_SECONDS),
                            (f"s:{shop_id}", SHOP_WINDOW_SECONDS)], events, now)
    if client > settings.STOREFRONT_CLIENT_EVENTS:
        return f"this browser sent more than {settings.STOREFRONT_CLIENT_EVENTS} events in {CLIENT_WINDOW_SECONDS} s"
    if shop > settings.STOREFRONT_SHOP_EVENTS_PER_SECOND:
        return f"this shop sent more than {settings.STOREFRONT_SHOP_EVENTS_PER_SECOND} events in a second"
    return None
