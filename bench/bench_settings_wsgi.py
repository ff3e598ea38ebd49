"""WSGI entry point with the benchmark settings, served exactly as shopseg/wsgi.py serves the app.

SHOPSEG_BENCH_NO_FAST_PATH=1 leaves the fast paths out (webhooks and pixel batches go through Django's views),
for comparison.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")
application = get_wsgi_application()

if not os.environ.get("SHOPSEG_BENCH_NO_FAST_PATH"):
    from shopseg.fastpath import wrap

    application = wrap(application)
