"""`python manage.py devstore`: run the local Shopify as its own HTTP server process."""
from __future__ import annotations

import datetime as dt
import signal
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from devstore.config import DevstoreConfig
from devstore.generator import seed_shop
from devstore.server import DevstoreServer
from devstore.state import DevStore


class Command(BaseCommand):
    help = "Run devstore, a local Shopify (OAuth, GraphQL Admin API, webhooks, bulk operations)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--db", default=".devstore/devstore.db", help="devstore's own SQLite state file")
        parser.add_argument("--fresh", action="store_true", help="delete the state file first")
        parser.add_argument("--shop", action="append", default=[], help="create this *.myshopify.com shop")
        parser.add_argument("--plan", default="shopify", help="plan of created shops (sets the API throttle)")
        parser.add_argument("--seed-customers", type=int, default=0, help="seed each created shop")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--seed-history-days-ago", type=int, default=0,
                            help="end the seeded history this many days before today (room for a history replay)")
        parser.add_argument("--app-key", help="register the app with this API key")
        parser.add_argument("--app-secret")
        parser.add_argument("--app-url", help="the app's application URL")
        parser.add_argument("--time-scale", type=float, default=1.0, help="scales webhook retry delays")
        parser.add_argument("--restore-multiplier", type=float, default=1.0, help="scales API rate limits")
        parser.add_argument("--access-token-ttl", type=int, default=3600)
        parser.add_argument("--consent", action="store_true", help="show the consent page instead of auto-approving")

    def handle(self, *args, **opts):
        db = Path(opts["db"])
        db.parent.mkdir(parents=True, exist_ok=True)
        if opts["fresh"]:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        store = DevStore(db)
        config = DevstoreConfig(
            public_url=f"http://{opts['host']}:{opts['port']}", time_scale=opts["time_scale"],
            restore_multiplier=opts["restore_multiplier"], access_token_ttl=opts["access_token_ttl"],
            auto_approve=not opts["consent"],
        )
        if opts["app_key"]:
            store.app_register(api_key=opts["app_key"], api_secret=opts["app_secret"], app_url=opts["app_url"])
        for domain in opts["shop"]:
            fresh = store.shop(domain) is None
            store.shop_create(domain, plan=opts["plan"])
            if fresh and opts["seed_customers"]:
                ends = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=opts["seed_history_days_ago"])
                report = seed_shop(store, domain, customers=opts["seed_customers"], seed=opts["seed"], now=ends)
                self.stdout.write(f"seeded {domain}: {report}")
        server = DevstoreServer(store, config, host=opts["host"], port=opts["port"])
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(f"devstore listening on {config.public_url}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except (KeyboardInterrupt, SystemExit):
            pass
