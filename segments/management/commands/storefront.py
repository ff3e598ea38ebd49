"""`python manage.py storefront --shop DOMAIN [--wait SECONDS] [--visitor-in TAG]`: what the web pixel has
brought in (JSON), once the worker has rolled up every visitor-day (or the wait is over); with
--visitor-in, also the client id of an anonymous visitor the segment tagged TAG shows to."""
import json
import time

from django.core.management.base import BaseCommand, CommandError

from segments.experiences.storefront import anonymous_visitor_in
from segments.shops.models import Shop
from segments.storefront.selectors import storefront_summary


class Command(BaseCommand):
    help = "Print the shop's storefront events, visitors and rollups as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True)
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the rollup to catch up")
        parser.add_argument("--visitor-in", help="a segment's tag: report one of its anonymous visitors")

    def handle(self, *args, **opts):
        shop = Shop.objects.filter(domain=opts["shop"]).first()
        if shop is None:
            raise CommandError(f"no shop {opts['shop']}")
        deadline = time.monotonic() + opts["wait"]
        summary = storefront_summary(shop=shop)
        while summary["behind"] and time.monotonic() < deadline:
            time.sleep(0.5)
            summary = storefront_summary(shop=shop)
        if opts["visitor_in"]:
            summary["visitor_in"] = {"tag": opts["visitor_in"],
                                     "client_id": anonymous_visitor_in(shop=shop, tag=opts["visitor_in"])}
        self.stdout.write(json.dumps(summary, default=str))
