"""Celery entry points for privacy compliance and data retention."""
