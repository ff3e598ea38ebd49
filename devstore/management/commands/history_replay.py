"""`python manage.py history_replay --shop DOMAIN --days 28 [--seed N] [--segment TEMPLATE_KEY]
[--effect 0.5] [--holdout PERCENT]`: bring a freshly installed devstore shop forward through its last
days (devstore.history_replay), so KPIs, migration and lift read observed history.

stderr: `progress <done> <total> days replayed`, one line per day. stdout: one JSON object (days,
orders placed, snapshots written, the planted segment's lift). Exit status 1 when refused."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from devstore.history_replay import ReplayRefused, history_replay
from devstore.replay_traffic import ReplayTrafficError
from segments.shops.models import Shop
from shopseg.progress import progress_line


class Command(BaseCommand):
    help = "Replay a fresh devstore shop's last days as observed history, with a planted playbook effect (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the *.myshopify.com shop")
        parser.add_argument("--days", type=int, default=28, help="complete days before today to replay")
        parser.add_argument("--seed", type=int, default=1, help="the same seed on the same shop draws the same orders")
        parser.add_argument("--segment", help="template key of the segment to plant the effect on "
                                              "(default: the one with the largest holdout)")
        parser.add_argument("--effect", type=float, default=0.5,
                            help="relative change in treated members' daily chance to buy (0: none)")
        parser.add_argument("--holdout", type=int, help="set the segment's holdout percentage first")

    def handle(self, *args, **opts):
        shop = Shop.objects.filter(domain=opts["shop"]).first()
        if shop is None:
            raise CommandError(f"no shop {opts['shop']}")
        try:
            result = history_replay(shop=shop, days=opts["days"], seed=opts["seed"], template=opts["segment"],
                                    effect=opts["effect"], holdout=opts["holdout"],
                                    progress=lambda done, total: progress_line(done, total, "days replayed"))
        except (ReplayRefused, ReplayTrafficError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result.to_dict(), default=str))
