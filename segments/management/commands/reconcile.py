"""`python manage.py reconcile --shop DOMAIN`: run one reconciliation now (beat does it periodically)."""
from django.core.management.base import BaseCommand, CommandError

from segments.mirror.reconcile import shop_reconcile
from segments.shops.models import Shop


class Command(BaseCommand):
    help = "Repair the mirror from what changed in Shopify since the last watermark; prints rows repaired."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True)

    def handle(self, *args, **opts):
        shop = Shop.objects.filter(domain=opts["shop"]).first()
        if shop is None:
            raise CommandError(f"no shop {opts['shop']}")
        self.stdout.write(str(shop_reconcile(shop_id=shop.pk)))
