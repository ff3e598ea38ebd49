"""The Celery app. Without REDIS_URL, tasks run in-process (eager) so the demo needs only Python."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopseg.settings")

app = Celery("shopseg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
