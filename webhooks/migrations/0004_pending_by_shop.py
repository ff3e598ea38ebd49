"""The drain takes pending deliveries round-robin across shops: a partial index of the pending ones
by (shop, id) replaces the (status, next_attempt_at) index, so the endpoint still maintains two
indexes per delivery and the shops with pending work are found without reading every pending row."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0003_lean_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='webhookevent',
            name='webhooks_we_status_3763eb_idx',
        ),
        migrations.AddIndex(
            model_name='webhookevent',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['shop_domain', 'id'], name='webhooks_event_pending_idx'),
        ),
    ]
