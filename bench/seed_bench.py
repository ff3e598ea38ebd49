"""Seeding benchmark: times `seed_shop` on a fresh temporary devstore and prints rows/s, peak RSS and
the ratio to the target (60 s per 100,000 customers), plus a naive baseline measured in the same run.

    .venv/bin/python bench/seed_bench.py --customers 100000
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstore.generator import seed_shop  # noqa: E402
from devstore.state import DevStore  # noqa: E402

SHOP = "bench-shop.myshopify.com"
TARGET_SECONDS_PER_100K = 60.0
TABLES = ("customers", "orders", "line_items", "refunds", "checkouts", "carts")
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=1000, help="customers in the naive-baseline sample")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="seed-bench-") as tmp:
        store = DevStore(Path(tmp) / "devstore.db")
        store.shop_create(SHOP)
        started = time.perf_counter()
        report = seed_shop(store, SHOP, customers=args.customers, seed=args.seed, now=NOW, batch=args.batch)
        seconds = time.perf_counter() - started
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
        store.close()
        naive_rows_per_s = naive_insert_rate(Path(tmp), args.sample, args.seed)

    target = TARGET_SECONDS_PER_100K * args.customers / 100_000
    naive_seconds = report.rows / naive_rows_per_s
    print(f"customers          {report.customers:,} (seed {args.seed}, batch {args.batch}, now {NOW:%Y-%m-%d})")
    print(f"rows               {report.rows:,}: orders {report.orders:,} (guest {report.guest_orders:,}), "
          f"line_items {report.line_items:,}, refunds {report.refunds:,}, checkouts {report.checkouts:,}, "
          f"carts {report.carts:,}, products {report.products}, variants {report.variants}")
    print(f"seconds            {seconds:.1f}")
    print(f"rows/s             {report.rows / seconds:,.0f}  ({report.customers / seconds:,.0f} customers/s)")
    print(f"peak RSS           {peak_rss_mb:,.0f} MB   (state file {size_mb:,.0f} MB)")
    print(f"target             {target:.0f} s (60 s per 100k customers)  ratio time/target {seconds / target:.2f}")
    print(f"baseline (naive)   row-at-a-time commits, default PRAGMAs: {naive_rows_per_s:,.0f} rows/s on a "
          f"{args.sample:,}-customer sample -> {naive_seconds:,.0f} s for these rows (insert only); "
          f"seed_shop is {naive_seconds / seconds:.1f}x faster")


def naive_insert_rate(tmp: Path, sample: int, seed: int) -> float:
    """Rows/s of the obvious implementation: one INSERT and one commit per row, default PRAGMAs."""
    source = DevStore(tmp / "sample.db")
    seed_shop(source, SHOP, customers=sample, seed=seed, now=NOW)
    target = DevStore(tmp / "naive.db")
    rows = 0
    started = time.perf_counter()
    for table in TABLES:
        for row in source.conn().execute(f"SELECT * FROM {table}"):  # noqa: S608 - fixed names
            values = tuple(row)
            marks = ", ".join("?" * len(values))
            with target.tx() as conn:
                conn.execute(f"INSERT INTO {table} VALUES ({marks})", values)  # noqa: S608
            rows += 1
    elapsed = time.perf_counter() - started
    source.close()
    target.close()
    return rows / elapsed


if __name__ == "__main__":
    main()
