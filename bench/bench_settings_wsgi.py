"""WSGI entry point with the benchmark settings."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")
application = get_wsgi_application()
