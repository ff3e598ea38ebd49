"""Trying again later, one rule for all of it: a delivery or a tag change due again, a Shopify call
after a 5xx, a task Celery retries. Exponential (base x 2^attempt, capped) with jitter, so the
retries of many items do not arrive together; Shopify's own Retry-After wins when it sent one."""
from __future__ import annotations

import random

from celery import Task

from shopseg.shopify.errors import ShopifyTransientError


def backoff(attempt: int, *, base: float, cap: float, jitter: float = 0.2) -> float:
    """Seconds to wait after `attempt` failures (0: the first): base x 2^attempt, at most `cap`,
    spread by ±`jitter` (a fraction)."""
    return min(cap, base * 2 ** attempt) * random.uniform(1 - jitter, 1 + jitter)


def shopify_retry_delay(exc: ShopifyTransientError, attempt: int, *, base: float, cap: float) -> float:
    """Shopify's Retry-After when it gave one (a little jitter on top), else `backoff`."""
    if exc.retry_after is not None:
        return exc.retry_after * random.uniform(1.0, 1.1)
    return backoff(attempt, base=base, cap=cap)


def task_retry(task: Task, exc: ShopifyTransientError, *, base: float = 5.0, cap: float = 300.0) -> Exception:
    """The retry to raise from a bound task Shopify answered with a transient error (its
    `max_retries` still applies: past it, Celery raises the error itself)."""
    return task.retry(exc=exc, countdown=shopify_retry_delay(exc, task.request.retries, base=base, cap=cap))
