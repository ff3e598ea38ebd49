"""Margins at scale: what gross profit costs the nightly run on 5,000,000 orders (PostgreSQL).

    .venv/bin/python bench/margins_bench.py [--customers 1000000] [--reuse]

The mirror is bench/metrics_bench.py's generated one (1M customers, 5M orders, 10M line items over
300 variants; database `shopseg_bench_metrics`, reused with --reuse), given unit costs for its
variants (about 8% without one, filled by a 30% default margin), then every order's cost of goods
computed once (segments.mirror.order_costs; timed, but not part of the nightly run: the mirror keeps
it as orders and costs change). Every template is an active segment (bench/segments_bench.py's set).
In one process it times:
- the floor: one plain aggregate over the orders (as metrics_bench);
- the nightly run: metrics rebuild, the predictions' fit and scoring, and the recompute of every
  template segment;
- the same recompute with two profit segments added (gross profit of at least 100 over all time,
  gross margin under 20% over the last 365 days): the margins the nightly run now computes;
- the profit measurement of every segment over 30 days (what the review and the KPI page run).
It prints seconds, and the ratio to the floor of rebuild + recompute with and without margins (what
margins add), beside the 12.3x that run held before issue 20 with 16 template segments
(BENCHMARKS.md, segment engine).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import metrics_bench as mb  # noqa: E402
from bench import segments_bench as sb  # noqa: E402

BEFORE_RATIO = 12.3      # the nightly total's ratio to the floor before margins (BENCHMARKS.md)
PROFIT_RULES = {
    "Gross profit 100+": {"version": 1, "include": {"metric": "gross_profit", "op": "gte", "value": "100"}},
    "Thin margins": {"version": 1, "include": {"metric": "gross_margin", "op": "lt", "value": "0.2",
                                               "window": {"last_days": 365}}},
}


def costs(shop) -> int:
    """Unit costs for the generator's 300 variants (ids 0, 10, …, 2990): half the price, none for every
    twelfth; a 30% default margin for those."""
    from segments.mirror.models import VariantCost
    VariantCost.objects.filter(shop=shop).delete()
    VariantCost.objects.bulk_create([
        VariantCost(shop=shop, inventory_item_id=p + 1, variant_id=p * 10,
                    unit_cost=None if p % 12 == 0 else (Decimal(5 + p) / 2).quantize(Decimal("0.01")))
        for p in range(300)])
    shop.default_margin_percent = 30
    shop.save(update_fields=["default_margin_percent"])
    return 300


def _vacuum(table: str) -> None:
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM FULL ANALYZE {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the database if it exists")
    args = parser.parse_args()
    orders = args.customers * 5
    os.environ.update({"DATABASE_URL": mb.URL, "DJANGO_SETTINGS_MODULE": "shopseg.settings"})
    if not (args.reuse and mb.database_exists()):
        mb.fresh_database()
    else:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env={**os.environ})
    import django

    django.setup()
    from segments.engine.rules import describe, parse
    from segments.measurement.profit import segments_profit
    from segments.membership.models import Segment, SegmentVersion
    from segments.membership.recompute import segments_recompute
    from segments.metrics.refresh import customer_metrics_rebuild
    from segments.mirror.order_costs import order_costs_refresh
    from segments.predictions.service import shop_predictions_fit
    from segments.shops.calendar import shop_today

    shop = sb.ensure_shop(mb.DOMAIN, args.customers, orders)
    print(f"unit costs for {costs(shop)} variants (8% none, 30% default margin)", flush=True)
    # Written behind the mirror's back, so every order's cost of goods is computed once, as migration
    # 0023 does for a store copy and a backfill's cost stage does as it loads (not part of the nightly run).
    _, changed = mb.timed("orders' cost of goods, whole shop (once)", lambda: order_costs_refresh(shop=shop))
    print(f"  {changed:,} orders changed", flush=True)
    if changed:     # compacted as a backfill leaves them (it writes each order once, with its costs)
        mb.timed("VACUUM FULL ANALYZE of the orders", lambda: _vacuum("segments_order"))
    segments = sb.template_segments(shop)
    print(f"{len(segments)} template segments", flush=True)
    mb.timed("floor (warm-up)", lambda: mb.floor_pass(shop))
    floor, _ = mb.timed("floor", lambda: mb.floor_pass(shop))
    rebuild, _ = mb.timed("metrics rebuild (nightly)", lambda: customer_metrics_rebuild(shop=shop, now=mb.NOW))
    fit, _ = mb.timed("predictions: fit and score", lambda: shop_predictions_fit(shop=shop, now=mb.NOW))
    segments_recompute(shop=shop, trigger="nightly", now=mb.NOW)            # everyone enters once
    later = mb.NOW + dt.timedelta(days=1)
    before, _ = mb.timed("recompute, templates", lambda: segments_recompute(shop=shop, trigger="nightly", now=later))
    for name, rules in PROFIT_RULES.items():
        document = parse(rules)
        segment = Segment.objects.create(shop=shop, name=name, handle=name.lower().replace(" ", "-").replace("+", ""))
        SegmentVersion.objects.create(segment=segment, number=1, rules=document.to_document(),
                                      summary=describe(document))
    segments_recompute(shop=shop, trigger="nightly", now=later)                # their members enter once
    after, _ = mb.timed("recompute, templates + 2 profit segments",
                        lambda: segments_recompute(shop=shop, trigger="nightly", now=later + dt.timedelta(hours=1)))
    everything = list(Segment.objects.filter(shop=shop))
    end = shop_today(shop)
    measured, rows = mb.timed("profit of every segment over 30 days", lambda: segments_profit(
        shop=shop, segments=everything, start=end - dt.timedelta(days=29), end=end))
    members = {s.name: rows.get(s.pk, {}).get("members") for s in everything if s.name in PROFIT_RULES}
    print(f"profit segments' members: {members}", flush=True)
    without, with_ = rebuild + before, rebuild + after
    print(f"\nfloor {floor:.2f} s | rebuild {rebuild:.2f} s | predictions {fit:.2f} s | recompute {before:.2f} s, "
          f"with margins {after:.2f} s (+{after - before:.2f} s) | profit measurement {measured:.2f} s")
    print(f"rebuild + recompute without margins {without:.2f} s = {without / floor:.1f}x floor; with margins "
          f"{with_:.2f} s = {with_ / floor:.1f}x floor (+{(with_ - without) / floor:.1f}x; the 16-segment run "
          f"before issue 20: {BEFORE_RATIO}x)")
    print(f"nightly total with predictions: {with_ + fit:.2f} s = {(with_ + fit) / floor:.1f}x floor")


if __name__ == "__main__":
    main()
