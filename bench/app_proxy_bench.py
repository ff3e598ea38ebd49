"""The app proxy's segments answer (GET /proxy/segments) under gunicorn + PostgreSQL, against a no-op view.

    flock /tmp/shopseg-bench.lock .venv/bin/python bench/app_proxy_bench.py [--seconds 15] [--rounds 2]
        [--rate 1100] [--shoppers 2000] [--connections 64]

Migrates a dedicated database (shopseg_bench_proxy) and fills an installed shop with three
segments, `--shoppers` anonymous visitors and as many customers, each in one or two segments (some
held out). Starts gunicorn as production runs it (shopseg/gunicorn_conf.py, access log off) serving
bench/bench_settings_wsgi.py. wrk (2 threads) then asks as the theme's app embed does through
Shopify's app proxy: each request a shopper's query, signed as Shopify signs it
(devstore.app_proxy) with a timestamp made just before the run (Shopify's signatures are good for
90 s); half are logged-in customers, half visitors by client_id. The no-op Django view gets the same
requests first (the baseline). Each path is driven twice: unpaced (64 connections sending as soon as
answered: the capacity), then at a fixed --rate, open loop (bench.storefront_ingest_bench.PACED:
late starts are counted, since wrk's latencies leave their wait out).

Prints requests/s and p50/p95/p99 of both, the answers checked against the segments each shopper is
in, the CPU per request, and the ratios to the issue's target: >= 1,000 requests/s with p95 <= 50 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.storefront_ingest_bench as ingest_bench  # noqa: E402
import bench.webhook_endpoint_bench as hooks  # noqa: E402
from bench.stack import wait_http  # noqa: E402
from bench.webhook_endpoint_bench import combine, sh  # noqa: E402
from devstore.app_proxy import proxied_query  # noqa: E402

DB = "shopseg_bench_proxy"
SHOP = "bench-proxy.myshopify.com"
hooks.DB, hooks.SHOP = DB, SHOP          # the webhook bench's helpers read these (database, CPU of its backends)
SECRET = "bench-proxy-secret-0123456789abcdef"
TARGET_RPS, TARGET_P95 = 1_000, 50.0
# hooks.LUA brings the per-thread prefix (setup); this asks for a shopper's query in turn and reports
# p95 as well as wrk's usual percentiles (and the paced runs' late starts).
LUA = hooks.LUA + r"""
request = function()
  counter = counter + 1
  return wrk.format("GET", wrk.path .. "?" .. queries[(counter * 7 + tonumber(id_prefix)) % #queries + 1])
end
done = function(summary, latency, requests)
  local n, worst = 0, 0
  for _, t in ipairs(threads or {}) do n = n + t:get("late"); worst = math.max(worst, t:get("late_max")) end
  io.write(string.format("JSON {\"requests\": %d, \"seconds\": %f, \"p50\": %f, \"p90\": %f, \"p95\": %f, " ..
    "\"p99\": %f, \"errors\": %d, \"non2xx\": %d, \"late\": %d, \"late_max\": %f}\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, n, worst))
end
"""
FILL = """
import json
from django.utils import timezone
from segments.membership.models import Membership, Segment, VisitorMembership
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.storefront.models import Visitor
shop = Shop.objects.get(domain=%(shop)r)
now = timezone.now()
segments = [Segment.objects.create(shop=shop, name=h, handle=h) for h in ("vip", "window-shoppers", "new-visitors")]
n = %(shoppers)d
customers = Customer.objects.bulk_create(Customer(shop=shop, shopify_id=7_000_000 + i) for i in range(n))
visitors = Visitor.objects.bulk_create(Visitor(shop=shop, client_id=f"cid-{i}", first_seen_at=now, last_seen_at=now)
                                       for i in range(n))
Membership.objects.bulk_create(Membership(shop=shop, segment=segments[(i + k) %% 3], customer=c, entered_at=now,
                                          version=1, holdout=i %% 10 == 0)
                               for i, c in enumerate(customers) for k in range(1 + i %% 2))
VisitorMembership.objects.bulk_create(VisitorMembership(segment=segments[(i + k) %% 3], visitor=v, entered_at=now,
                                                        holdout=i %% 10 == 0)
                                      for i, v in enumerate(visitors) for k in range(1 + i %% 2))
print(json.dumps({"customers": len(customers), "visitors": len(visitors)}))
"""


def expected(i: int) -> list[str]:
    """The tags shopper i is shown (FILL's memberships; held out: none)."""
    handles = ("vip", "window-shoppers", "new-visitors")
    return [] if i % 10 == 0 else sorted(f"seg:{handles[(i + k) % 3]}" for k in range(1 + i % 2))


def queries(shoppers: int) -> list[tuple[str, list[str]]]:
    """Each shopper's proxied query, signed now, with the answer it must get."""
    out = []
    for i in range(shoppers):
        customer = 7_000_000 + i if i % 2 else None
        query = "" if customer else f"client_id=cid-{i}"
        out.append((proxied_query(query, shop=SHOP, customer_id=customer, path_prefix="/apps/shopseg", secret=SECRET),
                    expected(i)))
    return out


def script(tmp: Path, shoppers: int, paced: float | None) -> Path:
    """A wrk script with freshly signed queries (and the pacing of `paced` requests/s, if given)."""
    lines = ",\n".join(json.dumps(q) for q, _ in queries(shoppers))
    text = f"queries = {{\n{lines}\n}}\n" + LUA
    if paced:
        text = f"interval = {2000 / paced}\n" + text + ingest_bench.PACED.split("done = function")[0]
    path = tmp / f"proxy-{time.monotonic_ns()}.lua"
    path.write_text(text)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1.1 * TARGET_RPS, help="requests/s offered in the paced runs")
    parser.add_argument("--shoppers", type=int, default=2000)
    # enough connections that the paced runs' schedule never waits for one (late starts stay ~0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--port", type=int, default=8097)
    opts = parser.parse_args()
    if opts.seconds > 60:
        parser.error("--seconds at most 60: Shopify's signatures are good for 90 s")

    load_start = os.getloadavg()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.bench_settings", SHOPIFY_API_SECRET=SECRET,
               DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}", SHOPSEG_LOG_LEVEL="WARNING",
               PYTHONPATH=str(ROOT))
    os.chdir(ROOT)
    hooks.prepare_database(env)
    filled = ingest_bench.django(env, FILL % {"shop": SHOP, "shoppers": opts.shoppers})
    tmp = Path(tempfile.mkdtemp(prefix="shopseg-bench-"))
    conf = tmp / "gunicorn_conf.py"
    conf.write_text(f"exec(open({str(ROOT / 'shopseg' / 'gunicorn_conf.py')!r}).read())\naccesslog = None\n")
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", str(conf),
                               "bench.bench_settings_wsgi:application", "--bind", f"127.0.0.1:{opts.port}",
                               "--log-level", "warning"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{opts.port}"
    runs: dict[str, list[dict]] = {"noop": [], "proxy": [], "noop paced": [], "proxy paced": []}
    try:
        wait_http(f"{base}/healthz")
        wrong = [(q, want, got) for q, want in queries(opts.shoppers)
                 if (got := httpx.get(f"{base}/proxy/segments?{q}", timeout=10).json().get("segments")) != want]
        for path in ("/bench/noop", "/proxy/segments"):     # warm-up: connections, imports, caches
            ingest_bench.wrk(f"{base}{path}", {}, 2, opts.connections, str(script(tmp, opts.shoppers, None)))
        for paced in (None, opts.rate):
            for _ in range(opts.rounds):
                for name, path in (("noop", "/bench/noop"), ("proxy", "/proxy/segments")):
                    runs[name + (" paced" if paced else "")].append(ingest_bench.wrk(
                        f"{base}{path}", {}, opts.seconds, opts.connections, str(script(tmp, opts.shoppers, paced)),
                        server.pid))
    finally:
        server.terminate()
        server.wait(timeout=20)
    load_end = os.getloadavg()

    print(f"load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, at end "
          f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} (1/5/15 min); {os.cpu_count()} CPUs")
    print(f"gunicorn -c shopseg/gunicorn_conf.py, access log off; wrk 2 threads, {opts.connections} connections, "
          f"{opts.rounds} x {opts.seconds} s per path and mode; {filled['customers']:,} customers and "
          f"{filled['visitors']:,} visitors, half the requests logged in")
    print(f"answers checked before the runs: {opts.shoppers - len(wrong):,} of {opts.shoppers:,} right"
          + (f"; first wrong: {wrong[0]}" if wrong else ""))
    figures = {}
    for name, parts in runs.items():
        f = combine(parts)
        f["p95"] = sum(r["p95"] * r["requests"] for r in parts) / f["requests"]
        f["late"], f["late_max"] = sum(r.get("late", 0) for r in parts), max(r.get("late_max", 0) for r in parts)
        figures[name] = f
        cpu = "  ".join(f"{k} {1e6 * v / f['requests']:.0f}" for k, v in f["cpu"].items())
        print(f"{name:12s} {f['rps']:7.0f} req/s  p50 {f['p50']:6.1f}  p95 {f['p95']:6.1f}  p99 {f['p99']:6.1f} ms  "
              f"non-2xx {f['non2xx']}  errors {f['errors']}  late starts {f['late']} (worst {f['late_max']:.1f} ms)  "
              f"CPU µs/request: {cpu}")
    capacity, paced = figures["proxy"], figures["proxy paced"]
    print(f"capacity: {capacity['rps']:,.0f} req/s = {capacity['rps'] / TARGET_RPS:.2f} x the 1,000 req/s target; "
          f"{capacity['rps'] / figures['noop']['rps']:.2f} x the no-op view")
    print(f"at {opts.rate:,.0f} req/s offered: {paced['rps']:,.0f} req/s, p95 {paced['p95']:.1f} ms = "
          f"{paced['p95'] / TARGET_P95:.2f} x the 50 ms target (lower is better); "
          f"{paced['p95'] / figures['noop paced']['p95']:.2f} x the no-op view's p95")


if __name__ == "__main__":
    main()
