"""`python manage.py tags --shop DOMAIN [--sync] [--wait SECONDS]`: the shop's tag sync as JSON; with
`--sync`, runs the sync in this process until nothing is due (bulk operations followed to the end),
as the beat's sweep would, so the demo writes tags with or without a worker. A run that finds the
shop busy (a worker syncing it) waits and tries again."""
import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone

from segments.membership.models import TagChange
from segments.shops.models import Shop
from segments.tags.models import BulkStatus, CustomerTag, LedgerState, TagBulkOperation
from segments.tags.selectors import tag_sync_status
from segments.tags.sync import shop_tags_sync
from shopseg.progress import progress_line


class Command(BaseCommand):
    help = "Print a shop's tag sync status (JSON); --sync writes the due tag changes first."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the *.myshopify.com shop")
        parser.add_argument("--sync", action="store_true", help="sync due tag changes in this process")
        parser.add_argument("--wait", type=float, default=600, help="at most this many seconds of syncing")
        parser.add_argument("--progress", action="store_true", help="report changes written/total on stderr")

    def handle(self, *args, **opts):
        shop = Shop.objects.filter(domain=opts["shop"]).first()
        if shop is None:
            raise CommandError(f"no shop {opts['shop']}")
        totals = {"customers": 0, "requests": 0, "points": 0.0, "bulk_operations": 0}
        if opts["sync"]:
            deadline, started = time.monotonic() + opts["wait"], timezone.now()
            # Short runs while someone watches, so progress is reported every few seconds.
            budget = 5.0 if opts["progress"] else 40.0
            while time.monotonic() < deadline and _work_left(shop):
                if opts["progress"]:
                    _report_progress(shop, started)
                report = shop_tags_sync(shop_id=shop.pk, budget_seconds=min(budget, deadline - time.monotonic()))
                totals["customers"] += report.customers
                totals["requests"] += report.requests
                totals["points"] += report.points
                totals["bulk_operations"] += len(report.bulk)
                if report.stopped and report.stopped != "busy":
                    raise CommandError(f"tag sync stopped: {report.stopped}")
                if report.stopped == "busy" or not report.customers:
                    time.sleep(0.5)          # a worker holds the shop, or a bulk operation is running
        self.stdout.write(json.dumps({"synced": totals, "status": tag_sync_status(shop=shop),
                                      "sample": _sample(shop)}, default=str))


def _sample(shop: Shop) -> dict | None:
    """The customer carrying the most of our tags: what the demo shows as it is in Shopify."""
    row = (CustomerTag.objects.filter(shop=shop, state=LedgerState.ACTIVE).values("customer__shopify_id")
           .annotate(n=Count("pk")).order_by("-n", "customer__shopify_id").first())
    if row is None:
        return None
    sid = row["customer__shopify_id"]
    tags = sorted(CustomerTag.objects.filter(shop=shop, customer__shopify_id=sid, state=LedgerState.ACTIVE)
                  .values_list("tag", flat=True))
    return {"customer_shopify_id": sid, "our_tags": tags}


def _report_progress(shop: Shop, since) -> None:
    counts = TagChange.objects.filter(shop=shop).aggregate(
        done=Count("pk", filter=Q(processed_at__gte=since)), left=Count("pk", filter=Q(processed_at__isnull=True)))
    progress_line(counts["done"], counts["done"] + counts["left"], "tag changes written")


def _work_left(shop: Shop) -> bool:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())
    return (TagChange.objects.filter(due, shop=shop, processed_at__isnull=True).exists()
            or TagBulkOperation.objects.filter(shop=shop, status__in=[BulkStatus.QUEUED, BulkStatus.RUNNING]).exists())
