"""`python manage.py measurement --shop DOMAIN [--month YYYY-MM]`: what the segments are worth, as
JSON: per segment the days of KPI history (backfilled or observed), revenue and its share of the
store's over the last 30 days; and the month's review (biggest movers, playbooks with significant
lift, segments too small or overlapping too much); and the shop's predictions (the models' fit and
their quality on the 90 days they did not see)."""
import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q, Sum

from segments.measurement.models import SegmentKpiSnapshot
from segments.measurement.review import monthly_review
from segments.membership.models import Segment
from segments.predictions.selectors import predictions_summary
from segments.shops.calendar import shop_today
from segments.shops.models import Shop

WINDOW_DAYS = 30


class Command(BaseCommand):
    help = "Print a shop's segment KPIs and monthly review (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the *.myshopify.com shop")
        parser.add_argument("--month", help="YYYY-MM; the current month by default")

    def handle(self, *args, **opts):
        shop = Shop.objects.filter(domain=opts["shop"]).first()
        if shop is None:
            raise CommandError(f"no shop {opts['shop']}")
        today = shop_today(shop)
        since = today - dt.timedelta(days=WINDOW_DAYS)
        totals = {row["segment"]: row for row in SegmentKpiSnapshot.objects.filter(shop=shop).values("segment")
                  .annotate(days=Count("pk"), backfilled=Count("pk", filter=Q(backfilled=True)),
                            revenue=Sum("revenue", filter=Q(day__gte=since)),
                            store=Sum("store_revenue", filter=Q(day__gte=since)))}
        segments = []
        for segment in Segment.objects.filter(shop=shop).select_related("shop").order_by("pk"):
            row = totals.get(segment.pk, {})
            store = row.get("store") or 0
            segments.append({"tag": segment.tag, "days": row.get("days", 0), "backfilled": row.get("backfilled", 0),
                             "revenue_30d": str(row.get("revenue") or 0),
                             "share_30d": round(float(row["revenue"]) / float(store), 4) if store else None})
        review = monthly_review(shop=shop, month=opts["month"] or today.strftime("%Y-%m"))
        self.stdout.write(json.dumps({"segments": segments, "review": review.to_dict(),
                                      "predictions": predictions_summary(shop=shop)}, default=str))
