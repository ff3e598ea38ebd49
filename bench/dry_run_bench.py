"""Builder live count benchmark: the dry-run the segment builder sends, over HTTP, on shops as a fresh
install leaves them (PostgreSQL).

    .venv/bin/python bench/dry_run_bench.py [--sizes 5000,100000] [--repeat 10] [--db-prefix shopseg_bench_dry_run]

For each size, in a child process of its own, against a fresh database `<db-prefix>_<size>`:
devstore (its own process, state in a temporary directory) is seeded with a shop of that many
customers (seed 1; orders scale 1.0 for 5,000 customers, the `make demo` shop, 1.32 above, ~5 orders
a customer as in bench/backfill_bench.py); the app is installed through the real OAuth flow (tasks
in-process) and the history backfill is driven to its end, which rebuilds the metrics table. No
ANALYZE is run but the app's own.

Then, per rule, `--repeat` times: `POST /api/segments/dry-run` with exactly the body the builder
sends ({"rules": …}, plus "segment" when editing a saved segment), through Django's test client with
a session token devstore minted, timed around the request. The rules: every template (with their
default values; category loyalists on the shop's first product type), an edit of "frequent buyers"
against its saved segment, and windowed rules that exercise each of the compiler's feature passes
(orders, line items, checkouts, carts, top source). It prints p50 / p95 per rule and two ratios:

- to the rule's **no-window variant** (the same rule with every window removed; measured in the
  same run), the reference the issue compared with;
- to the **old statement** (the same requests answered by the dry-run as it was before issue 14:
  feature passes as plain CTEs LEFT JOINed by customer, which the planner may inline and re-run per
  customer, and four statements per dry-run; `legacy_dry_run` below, swapped into the view), run
  with a statement timeout so a pathological plan cannot take the benchmark down.

Everything is measured twice: first on the tables as the backfill leaves them **without** the app's
ANALYZE steps (after the backfill and the metrics rebuild; held back and recorded: the tables as they
were before this change, which shows the statements do not depend on statistics), then after
replaying those steps exactly as the app runs them (the tables as a fresh install now leaves them)
and saving "frequent buyers" as a segment (whose full membership run ANALYZEs the membership table),
which adds the edit case. pg_stat_user_tables' analyze times are printed for both, so autovacuum
analyzing behind the bench's back would show.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.backfill_bench import drive, free_port, seed_store, start_devstore  # noqa: E402
from bench.dry_run_legacy import legacy_dry_run  # noqa: E402
from bench.oauth_install import install_in_process  # noqa: E402
from bench.stack import fresh_database, percentile  # noqa: E402

APP_KEY, APP_SECRET = "bench-dry-run-key", "bench-dry-run-secret-0123456789abcdef0123456789abcdef"
P95_TARGET = 1.0
OLD_TIMEOUT_SECONDS = 20
SHOWN_TABLES = ("segments_customer", "segments_order", "segments_lineitem", "segments_checkout",
                "segments_customermetrics", "segments_membership")


def _c(metric: str, op: str, value, window: dict | None = None, params: dict | None = None) -> dict:
    condition = {"metric": metric, "op": op, "value": value}
    if window:
        condition["window"] = window
    if params:
        condition["params"] = params
    return condition


def windowed_rules() -> dict[str, dict]:
    """Windowed rules beyond the templates, one or more per feature pass of the compiler."""
    days = lambda n: {"last_days": n}   # noqa: E731
    return {name: {"version": 1, "include": include} for name, include in {
        "orders >= 3 and spent > 200, last 90 days (the issue's rule)":
            {"all": [_c("orders_count", "gte", 3, days(90)), _c("total_spent", "gt", "200.00", days(90))]},
        "ordered in the last 30 days": _c("orders_count", "gte", 1, days(30)),
        "spent > 500 in the last 365 days, aov > 60": {"all": [_c("total_spent", "gt", "500.00", days(365)),
                                                              _c("aov", "gt", "60.00", days(365))]},
        "bought Coffee in the last 180 days (line items)":
            _c("product_type_orders", "gte", 1, days(180), {"product_type": "Coffee"}),
        "abandoned a checkout in the last 30 days (checkouts)": _c("abandoned_checkouts", "gte", 1, days(30)),
        "cart activity in the last 30 days (carts)": _c("cart_activity", "gte", 1, days(30)),
        "main channel web in the last 365 days (top source)": _c("source_channel", "eq", "web", days(365)),
        "ordered in Black Friday-Cyber Monday, 2 years":
            _c("orders_count", "gte", 1, {"holiday": "black_friday_cyber_monday", "years": 2}),
    }.items()}


def without_windows(node):
    """The same rules with every window removed (the no-window variant)."""
    if isinstance(node, dict):
        return {k: without_windows(v) for k, v in node.items() if k != "window"}
    if isinstance(node, list):
        return [without_windows(v) for v in node]
    return node


def has_window(node) -> bool:
    return without_windows(node) != node


# -- one shop ----------------------------------------------------------------------------------------
def build(size: int, db: str, orders_scale: float, tmp: Path, held: "HeldBack") -> tuple[str, subprocess.Popen, dict]:
    """A fresh database, devstore seeded with `size` customers, the app installed and the history
    backfilled (the metrics rebuilt at its end), the app's ANALYZE steps held back."""
    port = free_port()
    os.environ.update({
        "DATABASE_URL": fresh_database(db), "SHOPIFY_API_KEY": APP_KEY, "SHOPIFY_API_SECRET": APP_SECRET,
        "SHOPIFY_SHOP_BASE_URL": f"http://127.0.0.1:{port}/shops/{{shop}}", "SHOPSEG_APP_URL": "http://127.0.0.1:9",
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings", "SHOPIFY_HTTP_TIMEOUT_SECONDS": "60"})
    os.environ.pop("REDIS_URL", None)     # tasks in-process
    import django

    django.setup()
    import logging

    logging.disable(logging.ERROR)     # the old statement's timeouts are logged as server errors
    held.hold()
    shop = f"bench-{uuid.uuid4().hex[:8]}.myshopify.com"
    started = time.perf_counter()
    report = seed_store(tmp / "devstore.db", shop, customers=size, seed=1, orders_scale=orders_scale)
    print(f"  seeded {report['customers']:,} customers, {report['orders']:,} orders, {report['line_items']:,} line "
          f"items, {report['checkouts']:,} checkouts, {report['carts']:,} carts in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    devstore = start_devstore(tmp, port, app_key=APP_KEY, app_secret=APP_SECRET, timeout=300.0)
    started = time.perf_counter()
    install_in_process(f"http://127.0.0.1:{port}", shop, APP_KEY)
    from segments.shops.models import Shop

    run = drive(Shop.objects.get(domain=shop).pk)
    print(f"  installed and backfilled (metrics rebuilt) in {time.perf_counter() - started:.0f} s "
          f"({run['calls']} backfill_advance calls)", flush=True)
    return shop, devstore, report


def table_statistics() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT s.relname, c.reltuples, s.last_analyze, s.last_autoanalyze FROM pg_stat_user_tables s "
                       "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = ANY(%s) ORDER BY s.relname",
                       [list(SHOWN_TABLES)])
        rows = cursor.fetchall()
    return "; ".join(f"{name.removeprefix('segments_')} reltuples {tuples:,.0f}, analyzed "
                     f"{'never' if not (last or auto) else ('by the app' if last else 'by autovacuum')}"
                     for name, tuples, last, auto in rows)


def measure(api, rules: dict[str, dict], repeat: int, *, segment_id: int | None = None) -> tuple[list[float], dict]:
    """Seconds for `repeat` dry-runs of `rules` through the API, and the last answer."""
    body = {"rules": rules}
    if segment_id is not None:
        body["segment"] = segment_id
    seconds, answer = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        response = api.post("/api/segments/dry-run", json.dumps(body), content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {api.token}")
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"dry-run answered {response.status_code}: {response.content[:300]!r}")
        answer = response.json()
    return seconds, answer


def legacy_measure(api, rules: dict, repeat: int, *, segment_id: int | None = None) -> list[float] | None:
    """The same requests answered by the dry-run as it was before issue 14 (the view's service swapped
    for legacy_dry_run), under a statement timeout; None when a statement ran into it."""
    from django.db import OperationalError, connection

    from segments.web import segments_api

    current = segments_api.segment_dry_run
    segments_api.segment_dry_run = legacy_dry_run
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{OLD_TIMEOUT_SECONDS}s'")
    try:
        return measure(api, rules, repeat, segment_id=segment_id)[0]
    except (OperationalError, SystemExit):     # the timeout, raised or answered as a 500
        return None
    finally:
        segments_api.segment_dry_run = current
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


class HeldBack:
    """The app's ANALYZE steps (after a backfill, a metrics rebuild, a full membership run) switched
    off and recorded, so the tables can be measured as they were before this change; `replay` then
    runs each recorded step as the app would have."""

    def __enter__(self) -> "HeldBack":
        self.calls: list[tuple[str, dict]] = []
        return self

    def hold(self) -> None:
        from segments.membership import recompute as membership
        from segments.metrics import refresh as metrics
        from segments.mirror import backfill

        self.modules = {"backfill": backfill, "metrics": metrics, "membership": membership}
        self.real = {"tables_analyze": backfill.tables_analyze,
                     "table_analyze_if_rewritten": metrics.table_analyze_if_rewritten}
        backfill.tables_analyze = lambda **kw: self.calls.append(("tables_analyze", kw)) or []
        for module in (metrics, membership):
            module.table_analyze_if_rewritten = lambda **kw: self.calls.append(("table_analyze_if_rewritten", kw))

    def replay(self) -> list[str]:
        self.modules["backfill"].tables_analyze = self.real["tables_analyze"]
        for name in ("metrics", "membership"):
            self.modules[name].table_analyze_if_rewritten = self.real["table_analyze_if_rewritten"]
        done = []
        for name, kw in self.calls:
            if self.real[name](**kw):
                done.append(", ".join(kw.get("tables") or [kw["table"]]))
        return done

    def __exit__(self, *exc) -> None:
        return None


def one_size(args) -> None:
    size = args.size
    db = f"{args.db_prefix}_{size}"
    scale = 1.0 if size <= 5000 else 1.32
    print(f"\n== {size:,} customers (database {db}, orders scale {scale}) ==", flush=True)
    with tempfile.TemporaryDirectory(prefix="dry-run-bench-") as tmp, HeldBack() as held:
        shop_domain, devstore, _ = build(size, db, scale, Path(tmp), held)
        try:
            run_size(args, shop_domain, Path(tmp), held)
        finally:
            devstore.terminate()
            devstore.wait(timeout=30)


def run_size(args, shop_domain: str, tmp: Path, held: HeldBack) -> None:
    from django.test import Client

    from devstore import oauth
    from devstore.state import DevStore
    from segments.engine.rules import parse
    from segments.engine.templates import TEMPLATES, template_document
    from segments.membership.definitions import segment_create
    from segments.membership.models import Segment
    from segments.shops.models import Shop

    shop = Shop.objects.get(domain=shop_domain)
    api = Client()
    api.token = oauth.session_token(DevStore(tmp / "devstore.db"), shop_domain, APP_KEY, ttl=24 * 3600)
    rules = {f"template {t.key}": template_document(t.key) for t in TEMPLATES}
    rules.update(windowed_rules())
    for document in rules.values():
        parse(document)
    edit = ("edit: frequent buyers at 4 orders, against its segment", template_document("frequent_buyers", min_orders=4))
    segment = None

    def saved_segment() -> list[str]:
        # The merchant saves the rule (its members computed by a full membership run, which
        # now ANALYZEs the membership table) and edits it: the edit case, measured in this phase only.
        nonlocal segment
        replayed = held.replay()
        created = segment_create(shop=shop, name="Frequent buyers", rules=template_document("frequent_buyers"),
                                 template="frequent_buyers")
        segment = Segment.objects.get(pk=created.pk)
        return replayed

    phases = [("as the backfill leaves them without the app's ANALYZE (before this change)", None),
              ("as a fresh install now leaves them (the app's ANALYZE steps replayed as the app runs them), "
               "then a segment saved", saved_segment)]
    for title, prepare in phases:
        replayed = prepare() if prepare is not None else []
        print(f"\n-- tables {title}" + (f"\n   analyzed: {'; '.join(replayed)}" if replayed else "")
              + f"\n   {table_statistics()}", flush=True)
        print(f"   {'rule':<66} {'size':>7} {'p50 s':>7} {'p95 s':>7} | {'no-window p50':>13} {'ratio':>6} | "
              f"{'old p50':>8} {'old/new':>7}")
        worst = 0.0
        cases = [(name, document, None) for name, document in rules.items()]
        if segment is not None:
            cases.append((edit[0], edit[1], segment))
        for name, document, against in cases:
            measure(api, document, 1, segment_id=against and against.pk)    # warm-up
            seconds, answer = measure(api, document, args.repeat, segment_id=against and against.pk)
            p50, p95 = statistics.median(seconds), percentile(seconds, 0.95)
            worst = max(worst, p95)
            if has_window(document):
                plain, _ = measure(api, without_windows(document), args.repeat, segment_id=against and against.pk)
                ratio = f"{statistics.median(plain):>13.3f} {p50 / statistics.median(plain):>6.2f}"
            else:
                ratio = f"{'(no window)':>13} {'':>6}"
            old = legacy_measure(api, document, args.old_repeat, segment_id=against and against.pk)
            legacy = (f"{'>' + str(OLD_TIMEOUT_SECONDS):>8} {'>' + format(OLD_TIMEOUT_SECONDS / p50, '.0f'):>7}"
                      if old is None else f"{statistics.median(old):>8.3f} {statistics.median(old) / p50:>7.1f}")
            print(f"   {name[:66]:<66} {answer['size']:>7,} {p50:>7.3f} {p95:>7.3f} | {ratio} | {legacy}", flush=True)
        print(f"   worst p95 {worst:.3f} s: {worst / P95_TARGET:.2f} of the {P95_TARGET:.0f} s target", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,100000", help="customer counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=10, help="dry-runs per rule (p50 / p95 over them)")
    parser.add_argument("--old-repeat", type=int, default=3, help="runs of the old statement per rule")
    parser.add_argument("--db-prefix", default="shopseg_bench_dry_run")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)    # one size, in a child process
    args = parser.parse_args()
    if args.size:
        one_size(args)
        return
    for size in (int(s) for s in args.sizes.split(",")):
        subprocess.run([sys.executable, __file__, "--size", str(size), "--repeat", str(args.repeat),
                        "--old-repeat", str(args.old_repeat), "--db-prefix", args.db_prefix], check=True)


if __name__ == "__main__":
    main()
