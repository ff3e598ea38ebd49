"""shopseg: behavioral customer segments for Shopify stores, written back as customer tags."""
from .celery import app as celery_app

__all__ = ("celery_app",)
