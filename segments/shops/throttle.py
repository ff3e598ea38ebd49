"""The per-shop GraphQL rate budget, shared by every worker through Redis and driven by Shopify.

Shopify meters each (app, shop) with a leaky bucket and reports it in every response
(`extensions.cost.throttleStatus`: maximumAvailable, currentlyAvailable, restoreRate). Every call
the app makes reserves its cost from the shared estimate first (refilled at the restore rate since
Shopify's last word), waiting `(needed - available) / restoreRate` when it is short, and settles the
reservation when the answer comes. A reservation stays "in flight" until it is settled: Shopify may
not have charged it when another request's answer reports the bucket, so an answer's figure is
taken less whatever else is in flight (a little pessimistic when those were charged already, never
optimistic). Until Shopify has answered once, the bucket's size is not known and one request at a
time goes out. A reservation whose worker died stops counting after REQUEST_SECONDS.

Reserving and settling are read-modify-write steps on one Redis hash under WATCH, so two workers
never spend the same points. Without Redis (in-process development) the same steps run on this
process's copy.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import redis
from django.conf import settings

from shopseg.shopify.client import ThrottleStatus

log = logging.getLogger(__name__)
KEY = "shopseg:throttle:{shop_id}"
TTL_SECONDS = 3600
# Until Shopify has answered once, assume the Standard plan's bucket (the smallest).
DEFAULT_STATUS = ThrottleStatus(maximum_available=2000.0, currently_available=2000.0, restore_rate=100.0)
REQUEST_SECONDS = 60.0     # a reservation older than this belongs to a request that will never settle
NAP_SECONDS = 0.5          # a waiting worker looks again this often: an answer may have refilled the estimate
PROBE_NAP_SECONDS = 0.05   # ...and this often while the first request finds out the bucket's size
T = TypeVar("T")
State = dict[str, str]     # the hash: available, maximum, rate, stamp, probe, and r:<id> = "<cost> <expires>"


@dataclass(frozen=True)
class ThrottleState:
    maximum_available: float
    available: float            # estimated now
    restore_rate: float
    observed_at: float | None   # when Shopify last reported (epoch seconds); None: never

    def as_json(self) -> dict:
        return {"maximum_available": self.maximum_available, "available": round(self.available, 1),
                "restore_rate": self.restore_rate, "observed_at": self.observed_at}


@dataclass(frozen=True)
class Reservation:
    id: str
    cost: float
    waited: float               # seconds spent waiting for it


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)


_local: dict[int, State] = {}
_local_lock = threading.Lock()


# -- the steps (pure: a state in, what to answer and the state to write out) --------------------------
def _live(state: State, now: float) -> State:
    """The state without reservations that outlived REQUEST_SECONDS or a probe that did."""
    live = {}
    for key, value in state.items():
        if key.startswith("r:") and float(value.split()[1]) <= now or key == "probe" and float(value) <= now:
            continue
        live[key] = value
    return live


def _in_flight(state: State) -> float:
    return sum(float(value.split()[0]) for key, value in state.items() if key.startswith("r:"))


def _available(state: State, now: float) -> float:
    return min(float(state["maximum"]), float(state["available"])
               + max(0.0, now - float(state["stamp"])) * float(state["rate"]))


def _reserve_step(state: State, rid: str, cost: float, now: float) -> tuple[float, State | None]:
    """(seconds to wait, or 0 when reserved; the state to write, None for no change)."""
    live = _live(state, now)
    changed = live if len(live) != len(state) else None
    holding = {f"r:{rid}": f"{cost!r} {now + REQUEST_SECONDS!r}"}
    if "available" not in live:
        if "probe" in live:          # another request is finding out how big the bucket is
            return min(PROBE_NAP_SECONDS, float(live["probe"]) - now), changed
        return 0.0, {**live, **holding, "probe": repr(now + REQUEST_SECONDS)}
    available, maximum, rate = _available(live, now), float(live["maximum"]), float(live["rate"])
    needed = min(cost, maximum)      # a request dearer than the bucket waits for a full one
    if available >= needed:
        return 0.0, {**live, **holding, "available": repr(available - needed), "stamp": repr(now)}
    return ((needed - available) / rate if rate > 0 else 1.0), changed


def _settle_step(state: State, rid: str | None, status: ThrottleStatus | None, now: float) -> tuple[None, State]:
    live = _live(state, now)
    live.pop(f"r:{rid}", None)
    if status is None:               # no word from Shopify (5xx, network): what was reserved stays spent
        live.pop("probe", None)
        return None, live
    live.pop("probe", None)
    live.update(available=repr(min(status.maximum_available, status.currently_available - _in_flight(live))),
                maximum=repr(status.maximum_available), rate=repr(status.restore_rate), stamp=repr(now))
    return None, live


class ShopThrottle:
    """The shared budget of one shop: `reserve(cost)` blocks until the points are there, `settle`
    gives Shopify's answer back."""

    def __init__(self, shop_id: int, *, redis_url: str | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.shop_id = shop_id
        self._url = settings.REDIS_URL if redis_url is None else redis_url
        self._clock, self._sleep = clock, sleep
        self.waited = 0.0           # seconds this object spent waiting, for reports and benchmarks

    @property
    def _key(self) -> str:
        return KEY.format(shop_id=self.shop_id)

    def _apply(self, step: Callable[[State], tuple[T, State | None]]) -> T:
        """Run a step on the shared state atomically (WATCH/MULTI; run again if someone wrote meanwhile)."""
        if self._url:
            def transaction(pipe) -> T:
                result, state = step(pipe.hgetall(self._key))
                pipe.multi()
                if state is not None:
                    pipe.delete(self._key)
                    if state:
                        pipe.hset(self._key, mapping=state)
                        pipe.expire(self._key, TTL_SECONDS)
                return result

            try:
                return _redis(self._url).transaction(transaction, self._key, value_from_callable=True)
            except redis.RedisError as exc:
                log.warning("throttle state not shared (%s); using this process's estimate", type(exc).__name__)
        with _local_lock:
            result, state = step(dict(_local.get(self.shop_id) or {}))
            if state is not None:
                _local[self.shop_id] = state
            return result

    # -- spending -----------------------------------------------------------------------------------
    def reserve(self, cost: float) -> Reservation:
        """Wait until `cost` points are available and take them, until `settle`."""
        rid, waited = uuid.uuid4().hex[:16], 0.0
        while True:
            wait = self._apply(lambda state: _reserve_step(state, rid, float(cost), self._clock()))
            if wait <= 0:
                self.waited += waited
                return Reservation(rid, float(cost), waited)
            wait = min(wait, NAP_SECONDS)
            # A little jitter so workers waiting on one shop do not wake in lockstep.
            wait += random.uniform(0, min(0.05, wait * 0.05))
            self._sleep(wait)
            waited += wait

    def settle(self, reservation: Reservation | None, status: ThrottleStatus | None = None) -> None:
        """The request answered (`status`: Shopify's throttleStatus, THROTTLED answers included) or
        failed without one (None: what was reserved stays spent)."""
        self._apply(lambda state: _settle_step(state, reservation.id if reservation else None, status,
                                               self._clock()))

    # -- what Shopify said --------------------------------------------------------------------------
    def observe(self, status: ThrottleStatus | None) -> None:
        """Shopify's word outside any reservation of ours."""
        if status is not None:
            self.settle(None, status)

    def state(self) -> ThrottleState:
        """The current estimate (what GET /api/sync shows)."""
        raw: State | None = None
        if self._url:
            try:
                raw = _redis(self._url).hgetall(self._key) or None
            except redis.RedisError:
                raw = None
        if raw is None:
            with _local_lock:
                raw = dict(_local.get(self.shop_id) or {}) or None
        if not raw or "available" not in raw:
            status = DEFAULT_STATUS
            return ThrottleState(status.maximum_available, status.currently_available, status.restore_rate, None)
        return ThrottleState(float(raw["maximum"]), _available(raw, self._clock()), float(raw["rate"]),
                             float(raw["stamp"]))

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
