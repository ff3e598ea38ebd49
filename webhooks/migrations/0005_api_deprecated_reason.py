"""A delivery keeps X-Shopify-API-Deprecated-Reason, so the operator sees deprecated deliveries (mirror_status)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0004_pending_by_shop"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="api_deprecated_reason",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
    ]
