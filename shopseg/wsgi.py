"""WSGI entry point (gunicorn shopseg.wsgi).

The endpoints of settings.FAST_PATHS (Shopify's webhooks, the web pixel's batches) are answered by
shopseg.fastpath in front of Django (same checks, same code, without the middleware chain); every
other request goes to Django.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopseg.settings")
application = get_wsgi_application()

from shopseg.fastpath import wrap  # noqa: E402 - needs the settings configured above

application = wrap(application)
