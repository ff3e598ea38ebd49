"""The per-shop GraphQL rate budget, shared by every worker through Redis and driven by Shopify.

Shopify meters each (app, shop) with a leaky bucket and reports it in every response
(`extensions.cost.throttleStatus`: maximumAvailable, currentlyAvailable, restoreRate). Each worker
records what Shopify said; before a request it reserves the request's cost from the shared estimate
(refilled at the restore rate since Shopify's last word), and when the estimate is short it waits
`(needed - available) / restoreRate`. The reservation is one Lua script, so two workers never spend
the same points. Without Redis (in-process development) the estimate lives in this process.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

from shopseg.shopify.client import ThrottleStatus

log = logging.getLogger(__name__)
KEY = "shopseg:throttle:{shop_id}"
TTL_SECONDS = 3600
# Until Shopify has answered once, assume the Standard plan's bucket (the smallest).
DEFAULT_STATUS = ThrottleStatus(maximum_available=2000.0, currently_available=2000.0, restore_rate=100.0)

# KEYS[1] the shop's hash; ARGV cost, now. Returns the seconds to wait (0: reserved).
RESERVE = """
local h = redis.call('HMGET', KEYS[1], 'available', 'maximum', 'rate', 'stamp')
if not h[1] then return '0' end
local available, maximum, rate, stamp = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), tonumber(h[4])
local cost, now = tonumber(ARGV[1]), tonumber(ARGV[2])
available = math.min(maximum, available + math.max(0, now - stamp) * rate)
if available >= cost then
  redis.call('HSET', KEYS[1], 'available', tostring(available - cost), 'stamp', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return '0'
end
if rate <= 0 then return '1' end
return tostring((cost - available) / rate)
"""


@dataclass(frozen=True)
class ThrottleState:
    maximum_available: float
    available: float            # estimated now
    restore_rate: float
    observed_at: float | None   # when Shopify last reported (epoch seconds); None: never

    def as_json(self) -> dict:
        return {"maximum_available": self.maximum_available, "available": round(self.available, 1),
                "restore_rate": self.restore_rate, "observed_at": self.observed_at}


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)


_local: dict[int, dict[str, float]] = {}
_local_lock = threading.Lock()


class ShopThrottle:
    """The shared budget of one shop. `reserve(cost)` blocks until the points are there."""

    def __init__(self, shop_id: int, *, redis_url: str | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.shop_id = shop_id
        self._url = settings.REDIS_URL if redis_url is None else redis_url
        self._clock, self._sleep = clock, sleep
        self.waited = 0.0           # seconds this object spent waiting, for reports and benchmarks

    @property
    def _key(self) -> str:
        return KEY.format(shop_id=self.shop_id)

    # -- what Shopify said --------------------------------------------------------------------------
    def observe(self, status: ThrottleStatus | None) -> None:
        if status is None:
            return
        values = {"available": status.currently_available, "maximum": status.maximum_available,
                  "rate": status.restore_rate, "stamp": self._clock()}
        if self._url:
            try:
                client = _redis(self._url)
                client.hset(self._key, mapping={k: repr(float(v)) for k, v in values.items()})
                client.expire(self._key, TTL_SECONDS)
                return
            except redis.RedisError as exc:
                log.warning("throttle state not shared (%s); using this process's estimate", type(exc).__name__)
        with _local_lock:
            _local[self.shop_id] = values

    def observe_cost(self, cost: dict | None) -> None:
        """`extensions.cost` as Shopify sent it (a THROTTLED answer carries it too)."""
        status = (cost or {}).get("throttleStatus")
        if status:
            self.observe(ThrottleStatus(float(status["maximumAvailable"]), float(status["currentlyAvailable"]),
                                        float(status["restoreRate"])))

    # -- spending -----------------------------------------------------------------------------------
    def _try(self, cost: float) -> float:
        now = self._clock()
        if self._url:
            try:
                return float(_redis(self._url).eval(RESERVE, 1, self._key, repr(float(cost)), repr(now),
                                                    str(TTL_SECONDS)))
            except redis.RedisError as exc:
                log.warning("throttle state not shared (%s); using this process's estimate", type(exc).__name__)
        with _local_lock:
            state = _local.get(self.shop_id)
            if state is None:
                return 0.0
            available = min(state["maximum"], state["available"] + max(0.0, now - state["stamp"]) * state["rate"])
            if available >= cost:
                state.update(available=available - cost, stamp=now)
                return 0.0
            return (cost - available) / state["rate"] if state["rate"] > 0 else 1.0

    def reserve(self, cost: float) -> float:
        """Wait until `cost` points are available and take them; returns the seconds waited."""
        waited = 0.0
        while True:
            wait = self._try(cost)
            if wait <= 0:
                self.waited += waited
                return waited
            # A little jitter so workers waiting on one shop do not wake in lockstep.
            wait += random.uniform(0, min(0.05, wait * 0.05))
            self._sleep(wait)
            waited += wait

    def state(self) -> ThrottleState:
        """The current estimate (what GET /api/sync shows)."""
        raw: dict | None = None
        if self._url:
            try:
                raw = _redis(self._url).hgetall(self._key) or None
            except redis.RedisError:
                raw = None
        if raw is None:
            with _local_lock:
                raw = dict(_local.get(self.shop_id) or {}) or None
        if not raw:
            status = DEFAULT_STATUS
            return ThrottleState(status.maximum_available, status.currently_available, status.restore_rate, None)
        values = {k: float(v) for k, v in raw.items()}
        available = min(values["maximum"], values["available"]
                        + max(0.0, self._clock() - values["stamp"]) * values["rate"])
        return ThrottleState(values["maximum"], available, values["rate"], values["stamp"])

    def capacity(self) -> float:
        """The bucket's size as last reported (the most one request can ever cost)."""
        return self.state().maximum_available

    def reset(self) -> None:
        if self._url:
            try:
                _redis(self._url).delete(self._key)
            except redis.RedisError:
                pass
        with _local_lock:
            _local.pop(self.shop_id, None)
