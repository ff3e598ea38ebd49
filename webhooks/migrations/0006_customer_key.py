"""A delivery keeps the Shopify id of the customer its body names: the drains split work by it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0005_api_deprecated_reason"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="customer_key",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
