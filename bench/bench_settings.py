"""Settings for benchmarks: the app's own, plus a no-op view to measure against."""
from shopseg.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.bench_urls"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405 - logging per request would be measured too
