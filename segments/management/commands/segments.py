"""`python manage.py segments --shop DOMAIN [--from-templates] [--wait SECONDS] [--family F]`: a shop's
segments and their membership as JSON (only those started from a template of family F, if given);
optionally first creates one segment per template, as a merchant starting from the template gallery
would."""
import json
import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from segments.engine.templates import TEMPLATES, template_document
from segments.membership.definitions import segment_create
from segments.membership.models import MembershipEvent, Segment
from segments.mirror.models import LineItem
from segments.shops.models import Shop
from shopseg.progress import progress_line


class Command(BaseCommand):
    help = "Print a shop's segments with member counts and history (JSON); --from-templates creates them first."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the *.myshopify.com shop")
        parser.add_argument("--from-templates", action="store_true",
                            help="create a segment from every template the shop does not have yet")
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for recomputes to finish")
        parser.add_argument("--progress", action="store_true", help="report computed/total on stderr while waiting")
        parser.add_argument("--family", choices=sorted({t.family for t in TEMPLATES}),
                            help="report only the segments started from templates of this family")

    def handle(self, *args, **opts):
        shop = Shop.objects.filter(domain=opts["shop"]).first()
        if shop is None:
            raise CommandError(f"no shop {opts['shop']}")
        if opts["from_templates"]:
            self._from_templates(shop)
        deadline = time.monotonic() + opts["wait"]
        while time.monotonic() < deadline:
            computing = [s.computing for s in Segment.objects.filter(shop=shop)]
            if opts["progress"]:
                progress_line(computing.count(False), len(computing), "segments computed")
            if not any(computing):
                break
            time.sleep(0.5)
        report = segments_report(shop)
        if opts["family"]:
            keys = {t.key for t in TEMPLATES if t.family == opts["family"]}
            report = [row for row in report if row["template"] in keys]
        self.stdout.write(json.dumps(report))

    def _from_templates(self, shop: Shop) -> None:
        existing = set(Segment.objects.filter(shop=shop).values_list("template", flat=True))
        # Category loyalists need a category: the shop's best-selling product type.
        top_type = (LineItem.objects.filter(shop=shop).exclude(product_type="").values("product_type")
                    .annotate(n=Count("id")).order_by("-n").values_list("product_type", flat=True).first())
        for template in TEMPLATES:
            if template.key in existing:
                continue
            overrides = {"product_type": top_type} if template.key == "category_loyalists" and top_type else {}
            segment_create(shop=shop, name=template.name, rules=template_document(template.key, **overrides),
                           template=template.key, handle=template.tag_handle, author="demo", reason="started from the template",
                           holdout_percent=10 if template.key == "high_value_repeat" else 0)


def segments_report(shop: Shop) -> list[dict]:
    triggers: dict[int, Counter] = {}
    for segment_id, entered, trigger, n in (MembershipEvent.objects.filter(shop=shop)
                                            .values_list("segment_id", "entered", "trigger")
                                            .annotate(n=Count("id"))):
        triggers.setdefault(segment_id, Counter())[f"{'entries' if entered else 'exits'} ({trigger})"] += n
    return [{"name": s.name, "template": s.template, "tag": s.tag, "members": s.member_count,
             "holdout": s.holdout_count, "visitors": s.visitor_count,
             "version": s.current_version, "computing": s.computing,
             "history": dict(sorted(triggers.get(s.pk, Counter()).items()))}
            for s in Segment.objects.filter(shop=shop).select_related("shop").order_by("pk")]
