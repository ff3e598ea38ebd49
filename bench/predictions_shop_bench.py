"""A shop's nightly predictions on 5,000,000 orders (segments.predictions.service.shop_predictions_fit),
stage by stage, against one plain aggregate over the orders measured in the same run (PostgreSQL).

    flock /tmp/shopseg-bench.lock .venv/bin/python bench/predictions_shop_bench.py [--customers 1000000] [--runs 2]

The mirror is bench/metrics_bench.py's generated one (1M customers, 5M orders; database
`shopseg_bench_metrics`), reused when it holds a shop of that size, generated otherwise (~7 minutes);
no migration is run on a reused database. It times the floor (as metrics_bench: `SELECT customer_id,
count(*), sum(total) FROM segments_order GROUP BY customer_id` into a temporary table, after a
warm-up), then `--runs` fits at the generator's fixed now (each rewrites every buyer's row, the
predictions table vacuumed before each as autovacuum would, which is off here), each with the seconds
of its stages as the service logs them, its ratio to the floor and the peak RSS of this process
(VmHWM) and of the PostgreSQL backend. Last, what the fit produced, to compare runs and
versions: the parameters, the quality figures, and an md5 of every written row in customer order.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import metrics_bench as mb  # noqa: E402
from bench import segments_bench as sb  # noqa: E402

TARGET_SECONDS, TARGET_RSS_MB = 60.0, 1024.0
ROWS_DIGEST = """
SELECT count(*), md5(string_agg(concat_ws(' ', customer_id, p_alive, orders_30d, orders_90d, orders_365d,
       value_per_order, predicted_value, value_percentile, next_order_days, scored_at), E'\\n' ORDER BY customer_id))
FROM segments_customerprediction WHERE shop_id = %s
"""


class Stages(logging.Handler):
    """Keeps the stage seconds the service's log line carries."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.last = getattr(record, "stages", self.last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    os.environ.update({"DATABASE_URL": mb.URL, "DJANGO_SETTINGS_MODULE": "shopseg.settings"})
    if not mb.database_exists():
        mb.fresh_database()
    import django

    django.setup()
    from django.db import connection

    from segments.predictions.models import PredictionModel
    from segments.predictions.service import shop_predictions_fit
    from segments.shops.models import Shop

    shop = Shop.objects.filter(domain=mb.DOMAIN).first()
    sizes = mb.counts(shop) if shop else {}
    if (sizes.get("customer"), sizes.get("order")) == (args.customers, args.customers * 5):
        print(f"reusing {mb.DOMAIN}", flush=True)      # read by SQL: the mirror's models may be ahead of it
    else:
        shop = sb.ensure_shop(mb.DOMAIN, args.customers, args.customers * 5)
    stages = Stages()
    service_log = logging.getLogger("segments.predictions.service")
    service_log.addHandler(stages)
    service_log.setLevel(logging.INFO)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    mb.timed("floor (warm-up)", lambda: mb.floor_pass(shop))
    floor, _ = mb.timed("floor", lambda: mb.floor_pass(shop))
    rss_before = mb.peak_rss_mb()
    for run in range(1, args.runs + 1):
        # This machine's PostgreSQL runs without autovacuum: each run leaves every buyer's old row
        # behind, and the next upsert would wade through them. As autovacuum leaves the table nightly:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE segments_customerprediction")
        started = time.perf_counter()
        model = shop_predictions_fit(shop=shop, now=mb.NOW)
        seconds = time.perf_counter() - started
        parts = " | ".join(f"{stage} {value:.2f} s ({value / floor:.1f}x)" for stage, value in stages.last.items())
        print(f"run {run}: {seconds:.2f} s = {seconds / floor:.1f}x floor ({floor:.2f} s), "
              f"{seconds / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target; {model.customers:,} buyers",
              flush=True)
        print(f"  stages: {parts}", flush=True)
        print(f"  peak RSS: this process {mb.peak_rss_mb():,.0f} MB (before the fits {rss_before:,.0f} MB; "
              f"target {TARGET_RSS_MB:,.0f} MB), PostgreSQL backend {mb.peak_rss_mb(backend):,.0f} MB", flush=True)
    model = PredictionModel.objects.get(shop=shop)
    print(f"BG/NBD r {model.r!r} alpha {model.alpha!r} a {model.a!r} b {model.b!r}")
    print(f"Gamma-Gamma p {model.p!r} q {model.q!r} gamma {model.gamma!r}")
    print(f"quality {model.quality}")
    with connection.cursor() as cursor:
        cursor.execute(ROWS_DIGEST, [shop.pk])
        count, digest = cursor.fetchone()
    print(f"rows {count:,}, md5 {digest}")


if __name__ == "__main__":
    main()
