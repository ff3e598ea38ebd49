"""Celery entry points for history backfill and reconciliation."""
