"""When a shop's scopes and its time zone, currency and plan were true (shop/update, app/scopes_update)."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0014_shop_inactive_customer_days"),
    ]

    operations = [
        migrations.AddField(
            model_name="shop",
            name="scopes_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="shop",
            name="details_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
