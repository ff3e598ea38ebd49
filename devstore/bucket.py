"""Leaky-bucket rate limiting per (shop, app), sized by the shop's plan as on Shopify's GraphQL Admin API."""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

# Restore rates in points/second (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits).
# Bucket sizes are unpublished; live responses show 20x the restore rate, so devstore uses that.
PLAN_RESTORE_RATES: dict[str, float] = {
    "basic": 100.0,
    "shopify": 100.0,
    "advanced": 200.0,
    "plus": 1000.0,
    "enterprise": 2000.0,
}
DEFAULT_RESTORE_RATE = 100.0  # development and trial plans get the standard rate
BUCKET_SIZE_FACTOR = 20


def plan_limits(plan: str, multiplier: float = 1.0) -> tuple[float, float]:
    """(restore rate per second, bucket size) for a shop plan, scaled by devstore's restore_multiplier."""
    restore = PLAN_RESTORE_RATES.get(plan, DEFAULT_RESTORE_RATE) * multiplier
    return restore, restore * BUCKET_SIZE_FACTOR


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float

    def as_json(self) -> dict[str, float | int]:
        # Shopify reports the maximum and rate as floats and what is available as a whole number.
        return {
            "maximumAvailable": float(self.maximum_available),
            "currentlyAvailable": int(math.floor(self.currently_available)),
            "restoreRate": float(self.restore_rate),
        }


class LeakyBucket:
    """Points available now; refills continuously at `restore_rate` up to `capacity`. Thread-safe."""

    def __init__(self, capacity: float, restore_rate: float, clock: Callable[[], float]):
        self._lock = threading.Lock()
        self._clock = clock
        self.capacity = capacity
        self.restore_rate = restore_rate
        self._available = capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._available = min(self.capacity, self._available + elapsed * self.restore_rate)
        self._stamp = now

    def resize(self, capacity: float, restore_rate: float) -> None:
        """Follow a plan change; what is available never exceeds the new size."""
        with self._lock:
            self._refill()
            self.capacity = capacity
            self.restore_rate = restore_rate
            self._available = min(self._available, capacity)

    def try_take(self, amount: float, *, ceiling: float | None = None) -> tuple[bool, ThrottleStatus]:
        """Take `amount` if that much is available (capped by `ceiling`, for fault injection)."""
        with self._lock:
            self._refill()
            available = self._available if ceiling is None else min(self._available, ceiling)
            if amount > available:
                return False, ThrottleStatus(self.capacity, available, self.restore_rate)
            self._available -= amount
            return True, ThrottleStatus(self.capacity, self._available, self.restore_rate)

    def refund(self, amount: float) -> ThrottleStatus:
        """Give back the part of a charge a request did not use."""
        with self._lock:
            self._refill()
            self._available = min(self.capacity, self._available + max(0.0, amount))
            return ThrottleStatus(self.capacity, self._available, self.restore_rate)

    def status(self) -> ThrottleStatus:
        with self._lock:
            self._refill()
            return ThrottleStatus(self.capacity, self._available, self.restore_rate)


class BucketRegistry:
    """One bucket per (shop, api_key): calls from one app never drain another app's budget."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], LeakyBucket] = {}

    def bucket(self, shop: str, api_key: str, *, capacity: float, restore_rate: float) -> LeakyBucket:
        key = (shop, api_key)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = LeakyBucket(capacity, restore_rate, self._clock)
                self._buckets[key] = bucket
                return bucket
        if bucket.capacity != capacity or bucket.restore_rate != restore_rate:
            bucket.resize(capacity, restore_rate)
        return bucket
