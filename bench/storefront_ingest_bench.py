"""Storefront event ingest (POST /storefront/events) under gunicorn + PostgreSQL + Redis, against a no-op view.

    flock /tmp/shopseg-bench.lock .venv/bin/python bench/storefront_ingest_bench.py [--seconds 15] [--rounds 2]
        [--events 50] [--rate 220] [--connections 16] [--workers N] [--threads N] [--worker-class K]

Migrates a dedicated PostgreSQL database (shopseg_bench_storefront), creates an installed shop, its
web pixel row (segments_pixel, with its ingest key) and the raw events' daily partitions
(segments.storefront.partitions.partitions_ensure), then starts gunicorn exactly as
bench/webhook_endpoint_bench.py does (shopseg/gunicorn_conf.py, access log off, unless --workers /
--threads / --worker-class override it) serving bench/bench_settings_wsgi.py (the app plus the
`/bench/noop` view), with REDIS_URL on a Redis database of its own (13), so the per-browser and
per-shop caps count in Redis as in production. wrk (2 threads) then posts the pixel's batches:
--events events each (a mix of the standard events and a theme's custom ones, with the data the
pixel keeps and each one's page address and referrer: ~19 KB for 50), sent as text/plain like the
pixel, each request with a fresh clientId and fresh event ids (nothing dedupes, no browser cap
trips), timestamps taken at run start. The
no-op view gets the same bodies first (the baseline); with --rounds N the two alternate N times
and the figures add up.

These unpaced runs (16 connections, each sending as soon as its answer came) find the capacity; the
shop's own cap (20,000 events/s) is lifted for them. Then both paths are driven again at a fixed
rate (--rate batches/s, open loop: see PACED) for the latency the issue's target is about.

Prints requests/s and latency percentiles of both, events/s (requests x events per batch, checked
against the rows PostgreSQL stored during each run), the ratios to the issue's targets (>= 10,000
events/s, p99 <= 50 ms) and to the no-op view, the CPU each part of the system spent per batch,
then the bytes kept per event: the raw events table (every partition, heap + indexes + TOAST) per
row, and after the rollup (segments.storefront.rollup.visitor_days_rollup, run until it returns 0,
after an ANALYZE of the events) the rollup table segments_visitorday per event rolled up.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.webhook_endpoint_bench as hooks  # noqa: E402
from bench.stack import TICK, cpu_seconds, psql, wait_http  # noqa: E402
from bench.webhook_endpoint_bench import combine, sh  # noqa: E402

DB = "shopseg_bench_storefront"
SHOP = "bench-storefront.myshopify.com"
STOREFRONT = "https://northwind.shop"       # the shop's own domain: the pages' addresses
# The webhook bench's helpers (prepare_database, and the PostgreSQL backends its wrk() charges CPU
# to) read these module globals: pointed at this bench's database and shop.
hooks.DB, hooks.SHOP = DB, SHOP
REDIS_DB = 13
TARGET_EVENTS, TARGET_P99 = 10_000, 50.0
SHOP_CAP = 1_000_000
TEMPLATES = 8                     # distinct batches (names, products, pages); the ids differ per request
CLIENT = "@CLIENT@"               # replaced per request by a fresh clientId (event ids derive from it)
# hooks.LUA brings the per-thread id prefix (setup) and the JSON summary that wrk() reads (done);
# this request function replaces its webhook one. run_id is fresh per wrk run (wrk() sets it).
LUA = hooks.LUA + r"""
request = function()
  counter = counter + 1
  local client = string.format("%s-%s-%d", string.sub(run_id, 1, 10), id_prefix, counter)
  local body = string.gsub(templates[counter % #templates + 1], "@CLIENT@", client)
  return wrk.format("POST", wrk.path, nil, body)
end
"""
# --rate: an open-loop load. Each wrk thread books its requests on a fixed schedule (`interval` ms
# apart, a monotonic clock through LuaJIT's ffi) whichever of its connections is free, so a slow
# answer does not slow the offered rate down; a request whose slot had passed when a connection came
# free (every connection was waiting) goes at once and is counted `late`, with the worst lateness:
# wrk's latencies leave that wait out, so the figures are honest only while `late` stays 0.
PACED = r"""
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } shopseg_ts; int clock_gettime(int, shopseg_ts *); ]]
local ts = ffi.new("shopseg_ts")
local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 end
late, late_max, next_at = 0, 0, nil
delay = function()
  local t = now_ms()
  next_at = (next_at or t) + interval
  local wait = next_at - t
  if wait < 0 then
    late = late + 1
    if -wait > late_max then late_max = -wait end
    return 0
  end
  return wait
end
threads = {}
local base_setup = setup
setup = function(thread) base_setup(thread); table.insert(threads, thread) end
done = function(summary, latency, requests)
  local n, worst = 0, 0
  for _, t in ipairs(threads) do n = n + t:get("late"); worst = math.max(worst, t:get("late_max")) end
  io.write(string.format("JSON {\"requests\": %d, \"seconds\": %f, \"p50\": %f, \"p90\": %f, \"p99\": %f, " ..
    "\"errors\": %d, \"non2xx\": %d, \"late\": %d, \"late_max\": %f}\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, n, worst))
end
"""
PRODUCTS = [("classic-cotton-tee", "Tops", "Northwind", 24.0), ("merino-crew", "Knitwear", "Alpaca Co", 89.0),
            ("slim-selvedge-jeans", "Bottoms", "Indigo Works", 119.0), ("weekender-bag", "Bags", "Harbor", 145.0),
            ("trail-runner-2", "Shoes", "Summit", 130.0), ("linen-camp-shirt", "Tops", "Northwind", 58.0),
            ("wool-beanie", "Accessories", "Alpaca Co", 29.0), ("rain-shell-jacket", "Outerwear", "Summit", 179.0)]
COLLECTIONS = [("new-arrivals", "New arrivals"), ("winter-sale", "Winter sale"), ("mens-tops", "Men's tops"),
               ("bestsellers", "Bestsellers")]
SEARCHES = ["wool sweater", "black jeans 32", "rain jacket", "gift card", "running shoes women"]
NAMES = {"page_viewed": 30, "product_viewed": 26, "collection_viewed": 10, "search_submitted": 4,
         "product_added_to_cart": 8, "product_removed_from_cart": 2, "cart_viewed": 6, "checkout_started": 3,
         "checkout_completed": 1, "size_finder:opened": 3, "reviews:expanded": 2, "video:played": 1}


def batch(key: str, events: int, start: dt.datetime, rng: random.Random) -> dict:
    """One browser's batch as the pixel sends it (extensions/shopseg-pixel/src/index.js keeps this data)."""
    base, out = STOREFRONT, []
    names = rng.choices(list(NAMES), weights=list(NAMES.values()), k=events)
    referrer, seq = "https://www.google.com/", rng.randrange(0, 50)
    for i, name in enumerate(names):
        handle, ptype, vendor, price = rng.choice(PRODUCTS)
        pid, vid = 7_000_000_000_000 + rng.randrange(10**9), 44_000_000_000_000 + rng.randrange(10**9)
        variant = {"productId": str(pid), "variantId": str(vid), "productType": ptype, "vendor": vendor,
                   "price": price}
        url, data = f"{base}/products/{handle}?variant={vid}", {}
        if name == "product_viewed":
            data = variant
        elif name in ("product_added_to_cart", "product_removed_from_cart"):
            data = {**variant, "quantity": 1, "amount": price}
        elif name == "collection_viewed":
            handle, title = rng.choice(COLLECTIONS)
            url, data = f"{base}/collections/{handle}", {"collectionId": str(400_000_000_000 + rng.randrange(10**6)),
                                                         "title": title}
        elif name == "search_submitted":
            query = rng.choice(SEARCHES)
            url, data = f"{base}/search?q={query.replace(' ', '+')}", {"query": query, "results": rng.randrange(40)}
        elif name == "cart_viewed":
            url, data = f"{base}/cart", {"amount": round(rng.uniform(20, 400), 2), "quantity": rng.randrange(1, 6)}
        elif name in ("checkout_started", "checkout_completed"):
            token = f"{rng.getrandbits(128):032x}"
            url, data = f"{base}/checkouts/cn/{token}", {"token": token, "amount": round(rng.uniform(20, 400), 2)}
            if name == "checkout_completed":
                data["orderId"] = str(5_900_000_000_000 + rng.randrange(10**9))
        elif ":" in name:
            data = {"productId": str(pid), "source": "theme", "step": rng.randrange(1, 4), "variantShown": True}
        elif i == 0:
            url = f"{base}/?utm_source=google&utm_medium=cpc&utm_campaign=winter_sale"
        moment = start - dt.timedelta(seconds=3 * (events - 1 - i))
        seq += 1
        out.append({"id": f"sh-{CLIENT}-{i:03d}", "name": name, "clientId": CLIENT,
                    "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                    "seq": seq, "url": url, "referrer": referrer, "customerId": None, "data": data})
        referrer = url
    return {"key": key, "shop": SHOP, "analytics": True, "events": out}


def postgres_cpu() -> float:
    """CPU seconds of the whole PostgreSQL server so far: its live processes, plus the backends that
    exited (the postmaster reaps them, so theirs is in its cutime + cstime). Django reopens its
    connections every 60 s (conn_max_age), so counting the backends alive at the start, as
    hooks.wrk() does, loses the ones that close mid-run."""
    pids = [int(p) for p in sh("pgrep", "-x", "postgres", check=False).stdout.split()]
    postmaster = int(sh("pgrep", "-o", "-x", "postgres").stdout.split()[0])
    reaped = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()[13:15]
    return sum(map(cpu_seconds, pids)) + sum(int(x) for x in reaped) / TICK


def wrk(*args, **kwargs) -> dict:
    """hooks.wrk, with PostgreSQL's CPU counted over the whole server (see postgres_cpu)."""
    before = postgres_cpu()
    figures = hooks.wrk(*args, **kwargs)
    figures["cpu"]["postgres"] = postgres_cpu() - before
    return figures


def django(env: dict, script: str) -> dict:
    """Run `script` in the bench's Django (a subprocess on the bench database); its last line, as JSON."""
    out = sh(sys.executable, "manage.py", "shell", "--no-imports", "-c", script, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def rows() -> int:
    return int(psql("SELECT count(*) FROM segments_storefrontevent", DB))


def sizes() -> dict:
    """On-disk bytes of the raw events (every partition) and of the rollup and visitor tables."""
    leaves = "FROM pg_partition_tree('segments_storefrontevent') WHERE isleaf"
    raw = psql(f"SELECT sum(pg_total_relation_size(relid)), sum(pg_relation_size(relid)), "
               f"sum(pg_indexes_size(relid)), count(*) {leaves}", DB).split("|")
    days = psql("SELECT pg_total_relation_size('segments_visitorday'), count(*), coalesce(sum(events), 0) "
                "FROM segments_visitorday", DB).split("|")
    return {"raw_total": int(raw[0]), "raw_heap": int(raw[1]), "raw_indexes": int(raw[2]), "partitions": int(raw[3]),
            "raw_rows": rows(), "rollup_total": int(days[0]), "rollup_rows": int(days[1]),
            "rollup_events": int(days[2]),
            "visitor_total": int(psql("SELECT pg_total_relation_size('segments_visitor')", DB))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1, help="alternate no-op and ingest runs this many times")
    parser.add_argument("--events", type=int, default=50, help="events per batch (1-100)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, help="override shopseg/gunicorn_conf.py")
    parser.add_argument("--threads", type=int, help="override shopseg/gunicorn_conf.py")
    parser.add_argument("--worker-class", help="override shopseg/gunicorn_conf.py")
    parser.add_argument("--rate", type=float, default=1.1 * TARGET_EVENTS / 50,
                        help="batches/s offered in the paced runs (default 220: 10%% over the target's 10,000 "
                             "events/s in batches of 50)")
    parser.add_argument("--port", type=int, default=8098)
    opts = parser.parse_args()
    if not 1 <= opts.events <= 100:
        parser.error("--events must be 1 to 100")

    load_start = os.getloadavg()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.bench_settings",
               DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}", REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
               SHOPSEG_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
               # the shop's cap (20,000 events/s by default) lifted, so the unpaced runs find the capacity
               SHOPSEG_STOREFRONT_SHOP_EVENTS_PER_SECOND=str(SHOP_CAP))
    os.chdir(ROOT)
    hooks.prepare_database(env)     # migrated, with the installed shop
    sh("redis-cli", "-n", str(REDIS_DB), "FLUSHDB")
    made = django(env, f"""
import json
from segments.models import Shop
from segments.storefront.models import Pixel
from segments.storefront.partitions import partitions_ensure
pixel = Pixel.objects.create(shop=Shop.objects.get(domain={SHOP!r}))
print(json.dumps({{"key": pixel.ingest_key, "partitions": partitions_ensure()}}))""")

    start = dt.datetime.now(dt.timezone.utc)
    tmp = Path(tempfile.mkdtemp(prefix="shopseg-bench-"))
    paths, body_sizes = [], []
    for n in range(TEMPLATES):
        body = json.dumps(batch(made["key"], opts.events, start, random.Random(n)), separators=(",", ":")).encode()
        body_sizes.append(len(body.replace(CLIENT.encode(), b"x" * 19)))   # as sent: run id, thread, counter
        if body_sizes[-1] > 60 * 1024:
            raise SystemExit(f"a batch of {opts.events} events is {body_sizes[-1]} bytes: over the 64 KB limit")
        paths.append(tmp / f"batch{n}.json")
        paths[-1].write_bytes(body)
    lua = tmp / "post.lua"
    lua.write_text("templates = {}\n" + "".join(
        f'do local f = io.open("{p}", "rb"); templates[#templates + 1] = f:read("*a"); f:close() end\n'
        for p in paths) + LUA)
    paced = tmp / "paced.lua"
    paced.write_text(f"interval = {2000 / opts.rate}\n" + lua.read_text() + PACED)   # wrk's 2 threads share the rate

    conf = tmp / "gunicorn_conf.py"     # the app's config, access log off (as the webhook bench runs it)
    conf.write_text(f"exec(open({str(ROOT / 'shopseg' / 'gunicorn_conf.py')!r}).read())\naccesslog = None\n")
    args = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(conf), "bench.bench_settings_wsgi:application",
            "--bind", f"127.0.0.1:{opts.port}", "--log-level", "warning"]
    for flag, value in (("--workers", opts.workers), ("--threads", opts.threads),
                        ("--worker-class", opts.worker_class)):
        if value:
            args += [flag, str(value)]
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": STOREFRONT}
    server = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    noops, ingests, checks, paced_noops, paced_ingests, paced_checks = [], [], [], [], [], []
    try:
        base = f"http://127.0.0.1:{opts.port}"
        wait_http(f"{base}/healthz")
        probe = httpx.post(f"{base}/storefront/events", content=paths[0].read_bytes().replace(
            CLIENT.encode(), b"probe"), headers=headers, timeout=10)
        if probe.status_code != 202:
            raise SystemExit(f"the probe batch was refused: {probe.status_code} {probe.text[:500]}")
        # warm up both paths (connections, imports, Redis, the partitions' first pages)
        wrk(f"{base}/bench/noop", headers, 2, opts.connections, str(lua))
        wrk(f"{base}/storefront/events", headers, 2, opts.connections, str(lua))
        config = sh(sys.executable, "-c", f"import runpy, json; c = runpy.run_path({str(conf)!r}); "
                    "print(json.dumps({k: c.get(k) for k in ('worker_class', 'workers', 'threads')}))").stdout
        for _ in range(opts.rounds):
            noops.append(wrk(f"{base}/bench/noop", headers, opts.seconds, opts.connections, str(lua), server.pid))
            before = rows()
            ingests.append(wrk(f"{base}/storefront/events", headers, opts.seconds, opts.connections, str(lua),
                               server.pid))
            time.sleep(1)       # requests still in flight when wrk stopped finish (and are stored)
            checks.append(rows() - before)
        for _ in range(opts.rounds):
            paced_noops.append(wrk(f"{base}/bench/noop", headers, opts.seconds, opts.connections, str(paced),
                                   server.pid))
            before = rows()
            paced_ingests.append(wrk(f"{base}/storefront/events", headers, opts.seconds, opts.connections,
                                     str(paced), server.pid))
            time.sleep(1)
            paced_checks.append(rows() - before)
    finally:
        server.terminate()
        server.wait(timeout=20)
    load_end = os.getloadavg()
    noop, ingest = combine(noops), combine(ingests)
    per_batch = opts.events
    answered = [r["requests"] - r["non2xx"] for r in ingests]
    events_rps = ingest["rps"] * per_batch
    stored_rps = sum(checks) / ingest["seconds"]

    # Statistics for the day's partition, as autovacuum would have taken by now in production (this
    # server may run without it): without them the rollup's query walks the whole day's unique index
    # per call instead of the visitor index, and the rollup slows down as the day grows.
    autovacuum = psql("SHOW autovacuum", DB)
    psql("ANALYZE segments_storefrontevent", DB)
    rolled = django(env, """
import json, time
from segments.storefront.rollup import visitor_days_rollup
calls = days = 0
started = time.perf_counter()
while True:
    taken = visitor_days_rollup()
    calls += 1
    days += taken
    if not taken:
        break
print(json.dumps({"calls": calls, "days": days, "seconds": time.perf_counter() - started}))""")
    rollup_seconds = rolled["seconds"]
    size = sizes()
    queued = int(psql("SELECT count(*) FROM segments_visitordaydirty", DB))

    print(f"load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
          f"at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} (1/5/15 min); {os.cpu_count()} CPUs")
    print(f"gunicorn -c shopseg/gunicorn_conf.py ({json.loads(config)}); overrides: workers={opts.workers} "
          f"threads={opts.threads} worker_class={opts.worker_class}; access log off; REDIS_URL db {REDIS_DB}; "
          f"wrk connections={opts.connections}, {opts.rounds} x {opts.seconds}s per path; {opts.events} events per "
          f"batch, bodies {min(body_sizes):,}-{max(body_sizes):,} bytes; {made['partitions']} daily partitions made")
    for name, f in (("no-op Django view (baseline)", noop), ("POST /storefront/events", ingest)):
        print(f"{name:30s} {f['rps']:8.0f} req/s   p50 {f['p50']:6.1f} ms   p90 {f['p90']:6.1f} ms   "
              f"p99 {f['p99']:6.1f} ms (worst run {f['p99_max']:.1f})   errors {f['errors']}   non-2xx {f['non2xx']}")
    print(f"ingest: {events_rps:,.0f} events/s (requests x {per_batch}); stored during the runs "
          f"{sum(checks):,} rows = {stored_rps:,.0f} events/s")
    for i, (r, ok, stored) in enumerate(zip(ingests, answered, checks), 1):
        extra = stored - ok * per_batch       # batches still in flight when wrk stopped are stored, not counted
        verdict = "equal" if not extra else (
            f"{extra // per_batch} batches more: in flight when wrk stopped" if extra > 0 and not extra % per_batch
            and extra // per_batch <= opts.connections else f"MISMATCH: {extra:+,} rows")
        print(f"  run {i}: no-op {noops[i - 1]['requests'] / noops[i - 1]['seconds']:,.0f} req/s; ingest "
              f"{r['requests'] / r['seconds']:,.0f} req/s, p99 {r['p99']:.1f} ms: "
              f"{r['requests']:,} batches answered, {r['non2xx']} non-2xx, {r['errors']} errors; "
              f"2xx x {per_batch} = {ok * per_batch:,} events; rows stored {stored:,} ({verdict})")
    print("CPU per request, microseconds (gunicorn = master + workers; postgres = the whole server):")
    for name, f in (("no-op", noop), ("ingest", ingest)):
        parts = "  ".join(f"{k} {1e6 * v / f['requests']:6.0f}" for k, v in f["cpu"].items() if k != "machine")
        print(f"  {name:8s} {parts}   whole machine {1e6 * f['cpu']['machine'] / f['requests']:6.0f}"
              f"   (per event {1e6 * f['cpu']['machine'] / f['requests'] / per_batch:5.0f})")
    print(f"capacity (unpaced) events/s / {TARGET_EVENTS:,} target:  {events_rps / TARGET_EVENTS:.2f}; "
          f"ingest req/s / no-op req/s: {ingest['rps'] / noop['rps']:.2f}")
    paced_noop, paced_ingest = combine(paced_noops), combine(paced_ingests)
    print(f"paced at {opts.rate:,.0f} batches/s offered ({opts.rate * per_batch:,.0f} events/s), open loop:")
    for name, f, runs in (("no-op Django view (baseline)", paced_noop, paced_noops),
                          ("POST /storefront/events", paced_ingest, paced_ingests)):
        print(f"  {name:30s} {f['rps']:8.0f} req/s   p50 {f['p50']:6.1f} ms   p90 {f['p90']:6.1f} ms   "
              f"p99 {f['p99']:6.1f} ms (worst run {f['p99_max']:.1f})   non-2xx {f['non2xx']}   errors {f['errors']}   "
              f"late starts {sum(r['late'] for r in runs)} (worst {max(r['late_max'] for r in runs):.1f} ms)")
    print(f"  stored {sum(paced_checks):,} rows = {sum(paced_checks) / paced_ingest['seconds']:,.0f} events/s; "
          f"CPU per batch: " + "  ".join(f"{k} {1e6 * v / paced_ingest['requests']:.0f} µs"
                                         for k, v in paced_ingest["cpu"].items()))
    print(f"  events/s / {TARGET_EVENTS:,} target: {paced_ingest['rps'] * per_batch / TARGET_EVENTS:.2f}; "
          f"p99 / {TARGET_P99:.0f} ms target: {paced_ingest['p99'] / TARGET_P99:.2f} (lower is better); "
          f"p99 / no-op p99: {paced_ingest['p99'] / paced_noop['p99']:.2f}")
    raw_rows = max(1, size["raw_rows"])
    print(f"raw events: {size['raw_rows']:,} rows in {size['partitions']} partitions, "
          f"{size['raw_total']:,} bytes ({size['raw_heap']:,} heap, {size['raw_indexes']:,} indexes) = "
          f"{size['raw_total'] / raw_rows:.0f} bytes/event ({size['raw_heap'] / raw_rows:.0f} heap, "
          f"{size['raw_indexes'] / raw_rows:.0f} indexes)")
    print(f"rollup: {rolled['days']:,} visitor-days in {rolled['calls']} calls, {rollup_seconds:.1f} s "
          f"({size['rollup_events'] / max(rollup_seconds, 1e-9):,.0f} events/s); "
          f"{size['rollup_rows']:,} rows for {size['rollup_events']:,} events; {queued} left behind "
          f"(after ANALYZE; autovacuum {autovacuum})")
    print(f"segments_visitorday: {size['rollup_total']:,} bytes = "
          f"{size['rollup_total'] / max(1, size['rollup_events']):.1f} bytes/event rolled up "
          f"({size['rollup_total'] / max(1, size['rollup_rows']):.0f} bytes/visitor-day, target <= 100 bytes/event); "
          f"segments_visitor {size['visitor_total']:,} bytes = "
          f"{size['visitor_total'] / max(1, size['rollup_events']):.1f} bytes/event")
    sh("redis-cli", "-n", str(REDIS_DB), "FLUSHDB")


if __name__ == "__main__":
    main()
