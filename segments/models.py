"""Every model of the segments app, for Django to register. Each is defined, and imported from, its
domain's models module; the app label (and every table name) stays `segments`."""
from segments.experiences.models import *  # noqa: F401,F403
from segments.measurement.models import *  # noqa: F401,F403
from segments.membership.models import *  # noqa: F401,F403
from segments.metrics.models import *  # noqa: F401,F403
from segments.mirror.models import *  # noqa: F401,F403
from segments.predictions.models import *  # noqa: F401,F403
from segments.shops.models import *  # noqa: F401,F403
from segments.storefront.models import *  # noqa: F401,F403
from segments.tags.models import *  # noqa: F401,F403
