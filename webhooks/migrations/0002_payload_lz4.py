"""Compress stored payloads with lz4 instead of pglz (PostgreSQL 14+ built with lz4; else a no-op).

Every delivery's payload (~7 KB for an order) is compressed on insert, in the request; lz4 does it
for a fraction of pglz's CPU (BENCHMARKS.md, "Webhook endpoint under gunicorn"). Reading is
unchanged for every query; rows stored before keep pglz, which PostgreSQL reads as before.
"""
from django.db import DatabaseError, migrations, transaction

TABLE_COLUMN = "webhooks_webhookevent ALTER COLUMN payload"


def _set_compression(schema_editor, method: str) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE_COLUMN} SET COMPRESSION {method}")
    except DatabaseError:   # a server built without lz4 keeps the default
        pass


def forwards(apps, schema_editor):
    _set_compression(schema_editor, "lz4")


def backwards(apps, schema_editor):
    _set_compression(schema_editor, "pglz")


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0001_webhook_events"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
