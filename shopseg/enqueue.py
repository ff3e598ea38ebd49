"""Scheduling Celery tasks after commit without letting a dead broker fail the request.

The database row is the source of truth; a periodic sweeper picks up anything whose task never
reached the broker, so losing the enqueue loses nothing.
"""
from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def enqueue(task, *args) -> bool:
    try:
        task.delay(*args)
        return True
    except Exception as exc:  # kombu raises many types for a dead broker; none may fail the caller
        # (in-process mode the task itself ran and failed; its row stays pending for the sweeper too)
        log.warning("could not run or enqueue %s (%s: %s); the sweeper will retry", task.name, type(exc).__name__,
                    str(exc)[:200])
        return False


def enqueue_on_commit(task, *args) -> None:
    transaction.on_commit(lambda: enqueue(task, *args))
