"""Fewer writes per recorded delivery: no LIKE indexes, payloads kept in the row.

- `unique=True` / `db_index=True` on a CharField also build a `varchar_pattern_ops` index on
  PostgreSQL, for LIKE queries nobody makes of webhook ids or shop domains: replaced by a plain
  unique constraint (still the `ON CONFLICT (webhook_id)` arbiter) and a plain index.
- The payload column's storage becomes MAIN: a compressed order (~4 KB of a 7 KB delivery) stays in
  the table's own page instead of going out of line to TOAST as two chunks, each with its own index
  entry. Larger payloads still go out of line. Rows stored before are read as before.

BENCHMARKS.md, "Webhook endpoint under gunicorn", has the figures.
"""
from django.db import migrations, models

TABLE_COLUMN = "webhooks_webhookevent ALTER COLUMN payload"


def _set_storage(storage: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {TABLE_COLUMN} SET STORAGE {storage}")
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0002_payload_lz4"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(fields=("webhook_id",), name="webhooks_event_webhook_id_uniq"),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="webhook_id",
            field=models.CharField(max_length=100),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["shop_domain"], name="webhooks_event_shop_idx"),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="shop_domain",
            field=models.CharField(max_length=255),
        ),
        migrations.RunPython(_set_storage("MAIN"), _set_storage("EXTENDED")),
    ]
