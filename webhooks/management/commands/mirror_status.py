"""`python manage.py mirror_status [--shop DOMAIN]`: backfill state and mirror counts, as JSON."""
import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone

from segments.engine.metrics_ranking import ranking_drift
from segments.metrics.models import ShopMetricsBreakpoints
from segments.mirror.models import Checkout, Customer, Order, Product, ShopSync
from segments.mirror.selectors import variant_cost_coverage
from segments.shops.models import Shop
from shopseg.progress import progress_line
from webhooks.health import webhook_api_versions, webhook_health
from webhooks.models import EventStatus, WebhookEvent


class Command(BaseCommand):
    help = "Print each shop's backfill state, reconciliation watermark and mirror row counts (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", help="only this *.myshopify.com shop")
        parser.add_argument("--wait-backfill", type=float, default=0, metavar="SECONDS",
                            help="first wait (at most SECONDS) until the shop's backfill is done or failed, "
                                 "reporting customers + orders mirrored on stderr against --expect")
        parser.add_argument("--expect", type=int, default=0, help="rows the backfill should bring (progress total)")
        parser.add_argument("--wait-webhooks", type=float, default=0, metavar="SECONDS",
                            help="first wait (at most SECONDS) until none of the shop's deliveries is pending, "
                                 "reporting deliveries applied on stderr")

    def handle(self, *args, **opts):
        shops = Shop.objects.order_by("domain")
        if opts["shop"]:
            shops = shops.filter(domain=opts["shop"])
            if not shops.exists():
                raise CommandError(f"no shop {opts['shop']}")
        if opts["wait_backfill"]:
            if not opts["shop"]:
                raise CommandError("--wait-backfill needs --shop")
            _wait_backfill(shops.get(), opts["wait_backfill"], opts["expect"])
        if opts["wait_webhooks"]:
            if not opts["shop"]:
                raise CommandError("--wait-webhooks needs --shop")
            _wait_webhooks(shops.get(), opts["wait_webhooks"])
        report = []
        for shop in shops:
            sync = ShopSync.objects.filter(shop=shop).first()
            ranked_at = (ShopMetricsBreakpoints.objects.filter(shop=shop, position=50)
                         .values_list("computed_at", flat=True).first())
            buyers, changed = ranking_drift(shop_id=shop.pk)
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
                # variants with a cost row, and how many of them have no unit cost (none entered, or not read yet)
                "variant_costs": variant_cost_coverage(shop=shop),
                "webhooks": vars(webhook_health(shop_domain=shop.domain)),
                # deliveries in another API version than the pinned one, or marked deprecated by Shopify
                "webhook_api": vars(webhook_api_versions(shop_domain=shop.domain)),
                "webhooks_pending": WebhookEvent.objects.filter(shop_domain=shop.domain,
                                                                status=EventStatus.PENDING).count(),
                "dirty_customers": Customer.objects.filter(shop=shop, dirty_at__isnull=False).count(),
                # Ranked before the backfill finished: the rebuild after it has not succeeded (yet).
                "metrics": {"ranked_at": ranked_at.isoformat() if ranked_at else None, "buyers": buyers,
                            "changed_since_ranked": changed,
                            "stale": bool(sync and sync.backfill_finished_at
                                          and (ranked_at is None or ranked_at < sync.backfill_finished_at))},
                "abandoned_checkouts": Checkout.objects.filter(shop=shop, completed_at__isnull=True,
                                                               deleted_at__isnull=True).count(),
            })
        self.stdout.write(json.dumps(report))


def _wait_backfill(shop: Shop, seconds: float, expect: int) -> None:
    """Until the backfill failed, or is done and the metrics table was rebuilt over what it brought
    (segments computed before that would rank customers against an empty shop)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sync = ShopSync.objects.filter(shop=shop).first()
        if sync and sync.backfill_status == "failed":
            return
        if sync and sync.backfill_status == "done":
            rebuilt = ShopMetricsBreakpoints.objects.filter(shop=shop, computed_at__gte=sync.backfill_finished_at)
            progress_line(int(rebuilt.exists()), 1, "metrics table rebuilt over the history")
            if rebuilt.exists():
                return
        else:
            mirrored = Customer.objects.filter(shop=shop).count() + Order.objects.filter(shop=shop).count()
            progress_line(mirrored, max(expect, mirrored), "customers and orders mirrored")
        time.sleep(1)


def _wait_webhooks(shop: Shop, seconds: float) -> None:
    deadline, since = time.monotonic() + seconds, timezone.now()
    events = WebhookEvent.objects.filter(shop_domain=shop.domain)
    while time.monotonic() < deadline:
        counts = events.aggregate(done=Count("pk", filter=Q(processed_at__gte=since)),
                                  left=Count("pk", filter=Q(status=EventStatus.PENDING)))
        progress_line(counts["done"], counts["done"] + counts["left"], "deliveries applied")
        if not counts["left"]:
            return
        time.sleep(1)
