"""KPI snapshot benchmark: the daily snapshot of 20 segments on the 1,000,000-customer bench shop,
and the history backfill, against the 60 s target (PostgreSQL).

    flock /tmp/shopseg-bench.lock .venv/bin/python bench/kpi_bench.py

Needs metrics_bench's mirror in `shopseg_bench_metrics` (segments_bench.py --reuse leaves its 16
template segments there, computed). Segments missing up to 20 are added from templates with other
parameters and computed (untimed). Then, timed:
- the snapshot of today (the nightly shape: few membership events after the day);
- the snapshot of yesterday, where every membership entered after the day and has to be undone
  from history (the worst case the history reconstruction meets);
- the 90-day backfill of every segment, one after the other.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import metrics_bench as mb  # noqa: E402

TARGET = 60.0
SEGMENTS = 20
EXTRA = (("KPI bench: 3+ orders", {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 3}}),
         ("KPI bench: spent 500+", {"version": 1, "include": {"metric": "total_spent", "op": "gte", "value": 500}}),
         ("KPI bench: one order", {"version": 1, "include": {"metric": "orders_count", "op": "eq", "value": 1}}),
         ("KPI bench: spent 50-200", {"version": 1, "include": {"all": [
             {"metric": "total_spent", "op": "gte", "value": 50}, {"metric": "total_spent", "op": "lt", "value": 200}]}}))


def timed(label: str, fn):
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.2f} s", flush=True)
    return seconds, result


def main() -> None:
    if not mb.database_exists():
        sys.exit("shopseg_bench_metrics is missing: run bench/segments_bench.py first")
    os.environ.update({"DATABASE_URL": mb.URL, "DJANGO_SETTINGS_MODULE": "shopseg.settings"})
    import subprocess

    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True, env={**os.environ})
    import django

    django.setup()
    from segments.engine.rules import describe, parse
    from segments.measurement.models import SegmentKpiSnapshot
    from segments.measurement.snapshots import kpi_snapshot_day, kpi_snapshots_backfill
    from segments.membership.models import Segment, SegmentVersion
    from segments.membership.recompute import segments_recompute
    from segments.shops.calendar import shop_today
    from segments.shops.models import Shop

    shop = Shop.objects.get(domain=mb.DOMAIN)
    print("mirror: " + ", ".join(f"{k} {v:,}" for k, v in mb.counts(shop).items()), flush=True)
    have = {s.name for s in Segment.objects.filter(shop=shop)}
    added = []
    for name, rules in EXTRA:
        if len(have) + len(added) >= SEGMENTS or name in have:
            continue
        document = parse(rules)
        segment = Segment.objects.create(shop=shop, name=name, handle=name.lower().replace(" ", "-")
                                         .replace(":", "").replace("+", "plus")[:60], holdout_percent=10)
        SegmentVersion.objects.create(segment=segment, number=1, rules=document.to_document(), summary=describe(document))
        added.append(segment)
    uncomputed = [s for s in Segment.objects.filter(shop=shop) if s.computed_version is None]
    if uncomputed:
        timed(f"compute {len(uncomputed)} segments (setup, untimed target)",
              lambda: segments_recompute(shop=shop, segments=uncomputed))
    segments = list(Segment.objects.filter(shop=shop, status="active"))
    members = sum(s.member_count for s in segments)
    print(f"{len(segments)} active segments, {members:,} memberships", flush=True)
    SegmentKpiSnapshot.objects.filter(shop=shop).delete()

    today = shop_today(shop)
    nightly, _ = timed("snapshot of today (nightly shape)", lambda: kpi_snapshot_day(shop=shop, day=today))
    worst, _ = timed("snapshot of yesterday (every membership undone from history)",
                     lambda: kpi_snapshot_day(shop=shop, day=today - dt.timedelta(days=1)))
    started = time.perf_counter()
    for segment in segments:
        kpi_snapshots_backfill(segment=segment, days=90)
    backfill = time.perf_counter() - started
    print(f"backfill, 90 days x {len(segments)} segments: {backfill:.2f} s "
          f"({backfill / len(segments):.2f} s per segment)", flush=True)
    print(f"ratio to the {TARGET:.0f} s target: nightly {nightly / TARGET:.3f}, worst case {worst / TARGET:.3f}, "
          f"backfill of all {backfill / TARGET:.3f}", flush=True)
    print(f"snapshots written: {SegmentKpiSnapshot.objects.filter(shop=shop).count():,}", flush=True)


if __name__ == "__main__":
    main()
