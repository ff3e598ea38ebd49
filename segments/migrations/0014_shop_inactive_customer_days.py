"""The inactive-customer retention setting; and finished bulk tag operations lose their lines.

A bulk tag operation's lines ([customer pk, Shopify id, tags, ...]) are needed only until its
results are applied; the app now empties them when the operation ends, and this empties those of
operations that ended before (they held customers' Shopify ids for good, past any redaction).
"""
from django.db import migrations, models

FINISHED = ("completed", "failed")


def finished_bulk_lines_empty(apps, schema_editor):
    TagBulkOperation = apps.get_model("segments", "TagBulkOperation")
    TagBulkOperation.objects.filter(status__in=FINISHED).exclude(lines=[]).update(lines=[])


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0013_customer_tag_events_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="shop",
            name="inactive_customer_days",
            field=models.PositiveIntegerField(default=730),
        ),
        migrations.RunPython(finished_bulk_lines_empty, migrations.RunPython.noop, elidable=True),
    ]
