"""`python manage.py mirror_status [--shop DOMAIN]`: backfill state and mirror counts, as JSON."""
import json

from django.core.management.base import BaseCommand, CommandError

from segments.models import Checkout, Customer, Order, Product, Shop, ShopSync
from segments.selectors.health import webhook_health
from webhooks.models import EventStatus, WebhookEvent


class Command(BaseCommand):
    help = "Print each shop's backfill state, reconciliation watermark and mirror row counts (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", help="only this *.myshopify.com shop")

    def handle(self, *args, **opts):
        shops = Shop.objects.order_by("domain")
        if opts["shop"]:
            shops = shops.filter(domain=opts["shop"])
            if not shops.exists():
                raise CommandError(f"no shop {opts['shop']}")
        report = []
        for shop in shops:
            sync = ShopSync.objects.filter(shop=shop).first()
            report.append({
                "shop": shop.domain, "status": shop.status,
                "backfill": sync.backfill_status if sync else None,
                "backfill_lines_done": sync.lines_done if sync else 0,
                "history_since": sync.history_since.isoformat() if sync and sync.history_since else None,
                "last_reconcile_at": sync.last_reconcile_at.isoformat() if sync and sync.last_reconcile_at else None,
                "last_reconcile_repaired": sync.last_reconcile_repaired if sync else 0,
                "customers": Customer.objects.filter(shop=shop, deleted_at__isnull=True).count(),
                "orders": Order.objects.filter(shop=shop).count(),
                "products": Product.objects.filter(shop=shop, deleted_at__isnull=True).count(),
                "webhooks": vars(webhook_health(shop_domain=shop.domain)),
                "webhooks_pending": WebhookEvent.objects.filter(shop_domain=shop.domain,
                                                                status=EventStatus.PENDING).count(),
                "dirty_customers": Customer.objects.filter(shop=shop, dirty_at__isnull=False).count(),
                "abandoned_checkouts": Checkout.objects.filter(shop=shop, completed_at__isnull=True,
                                                               deleted_at__isnull=True).count(),
            })
        self.stdout.write(json.dumps(report))
