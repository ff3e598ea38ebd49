"""Celery entry points of the segments app (autodiscovered as `segments.tasks`), one module per area."""
from segments.tasks.backfill import *  # noqa: F401,F403
from segments.tasks.compliance import *  # noqa: F401,F403
from segments.tasks.membership import *  # noqa: F401,F403
from segments.tasks.metrics import *  # noqa: F401,F403
from segments.tasks.shops import *  # noqa: F401,F403
from segments.tasks.tags import *  # noqa: F401,F403
