"""WSGI entry point (gunicorn shopseg.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopseg.settings")
application = get_wsgi_application()
