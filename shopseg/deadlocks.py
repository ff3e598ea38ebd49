"""Deadlocks between workers that lock the same customers in different orders (the tag sync
recording Shopify's answers, a webhook drain applying `customers/update`): PostgreSQL aborts one
transaction whole, and running it again is correct. Used where the work is already done elsewhere
(Shopify answered) and only its recording must not be lost."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError
from psycopg.errors import DeadlockDetected

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 5


def is_deadlock(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and isinstance(exc.__cause__, DeadlockDetected)


def retry_on_deadlock(transaction_body: Callable[[], T], *, what: str, attempts: int = ATTEMPTS,
                      pause: float = 0.05) -> T:
    """Run `transaction_body` (which opens its own transaction) again when PostgreSQL chose it as a
    deadlock's victim; a random pause, up to `pause` x the attempt, lets the other side finish first
    (long transactions facing a burst of short ones want a longer one)."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction_body()
        except OperationalError as exc:
            if not is_deadlock(exc) or attempt == attempts:
                raise
            log.warning("%s deadlocked with another worker; again (attempt %d)", what, attempt + 1)
            time.sleep(random.uniform(pause / 5, pause) * attempt)
    raise AssertionError("unreachable")
