"""Scheduling Celery tasks after commit without letting a dead broker fail the request.

The database row is the source of truth; a periodic sweeper picks up anything whose task never
reached the broker, so losing the enqueue loses nothing.
"""
from __future__ import annotations

import importlib
import logging

from celery import Task
from django.db import transaction

from shopseg.celery import app

log = logging.getLogger(__name__)


def task_named(name: str) -> Task:
    """The task with this dotted name (module.function), its module imported if it was not yet.
    Services schedule their domain's tasks by name: the tasks module imports the services, so a
    service importing it back would be an import cycle."""
    importlib.import_module(name.rpartition(".")[0])
    return app.tasks[name]


def enqueue(task: Task | str, *args) -> bool:
    """Run `task` (a task or its dotted name) in a worker; False (logged) when the broker is away."""
    task = task_named(task) if isinstance(task, str) else task
    try:
        task.delay(*args)
        return True
    except Exception as exc:  # kombu raises many types for a dead broker; none may fail the caller
        # (in-process mode the task itself ran and failed; its row stays pending for the sweeper too)
        log.warning("could not run or enqueue %s (%s: %s); the sweeper will retry", task.name, type(exc).__name__,
                    str(exc)[:200])
        return False


def enqueue_on_commit(task: Task | str, *args) -> None:
    transaction.on_commit(lambda: enqueue(task, *args))
