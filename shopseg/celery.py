"""The Celery app. Without REDIS_URL, tasks run in-process (eager) so the demo needs only Python."""
import inspect
import os

from celery import Celery
from celery.signals import import_modules, task_postrun, task_prerun

from shopseg.observability import bind, unbind

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopseg.settings")

# Each domain keeps its Celery entry points in its own `tasks` module.
TASK_PACKAGES = ["webhooks", "segments.shops", "segments.mirror", "segments.metrics", "segments.membership",
                 "segments.tags", "segments.measurement", "segments.privacy", "segments.storefront",
                 "segments.experiences"]
# Where tasks lived before the domain packages: a message queued (or a beat entry scheduled) under
# an old name before a deploy still finds its task after it.
RENAMED_TASK_MODULES = {
    "segments.tasks.shops": "segments.shops.tasks", "segments.tasks.backfill": "segments.mirror.tasks",
    "segments.tasks.metrics": "segments.metrics.tasks", "segments.tasks.membership": "segments.membership.tasks",
    "segments.tasks.tags": "segments.tags.tasks", "segments.tasks.kpis": "segments.measurement.tasks",
    "segments.tasks.compliance": "segments.privacy.tasks",
}

app = Celery("shopseg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: TASK_PACKAGES)


def old_task_names(tasks) -> dict:
    """Old name -> task, for every task of a renamed module."""
    old = {new: before for before, new in RENAMED_TASK_MODULES.items()}
    aliases = {}
    for name, task in list(tasks.items()):
        module, _, function = name.rpartition(".")
        if module in old:
            aliases[f"{old[module]}.{function}"] = task
    return aliases


@import_modules.connect
def _register_old_names(sender=None, **kwargs) -> None:
    """Once a worker or beat has imported every task module."""
    app.tasks.update(old_task_names(app.tasks))


_bound: dict[str, object] = {}     # task id -> its log context token


@task_prerun.connect
def _log_context_bind(task_id=None, task=None, args=(), kwargs=None, **_) -> None:
    """Every log line of a task names it, its id, and the ids it was given (shop_id, segment_id, …)."""
    names = list(inspect.signature(task.run).parameters)
    given = {**dict(zip(names, args)), **(kwargs or {})}
    ids = {name: value for name, value in given.items() if name.endswith("_id") or name == "slot"}
    _bound[task_id] = bind(task=task.name, task_id=task_id, **ids)


@task_postrun.connect
def _log_context_unbind(task_id=None, **_) -> None:
    token = _bound.pop(task_id, None)
    if token is not None:
        unbind(token)
