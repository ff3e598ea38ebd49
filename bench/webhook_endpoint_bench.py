"""Webhook endpoint throughput and latency under gunicorn + PostgreSQL, against a no-op view.

    .venv/bin/python bench/webhook_endpoint_bench.py [--seconds 15] [--connections 16] [--workers 4]

Starts gunicorn on a dedicated PostgreSQL database with Redis as the broker (deliveries are
recorded and enqueued exactly as in production; no worker drains the queue during the run), then
drives it with wrk: first the no-op Django view (the baseline), then POST /webhooks/shopify with
validly signed orders/create deliveries, each with a fresh X-Shopify-Webhook-Id. Prints requests/s,
latency percentiles, and the ratios to the targets (500/s, p99 <= 50 ms, >= 60% of the no-op view).
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
DB = "shopseg_bench_webhooks"
SHOP = "bench-shop.myshopify.com"
LUA = r"""
counter = 0
request = function()
  counter = counter + 1
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Shopify-Webhook-Id"] = string.format("%s-%d-%d", id_prefix, math.random(1, 1e9), counter)
  return wrk.format("POST", wrk.path, headers, wrk.body)
end
setup = function(thread) thread:set("id_prefix", tostring(math.random(1, 1e9))) end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"seconds\": %f, \"p50\": %f, \"p90\": %f, \"p99\": %f, " ..
    "\"errors\": %d, \"non2xx\": %d}\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def sh(*args, env=None, check=True):
    return subprocess.run(args, env=env, check=check, capture_output=True, text=True)


def prepare_database(env):
    sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {DB}")
    sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {DB}")
    sh(sys.executable, "manage.py", "migrate", "--noinput", "-v", "0", env=env)
    script = (f"from segments.models import Shop; Shop.objects.create(domain='{SHOP}', "
              "access_token='shpat_bench', scopes='read_orders,read_customers')")
    sh(sys.executable, "manage.py", "shell", "--no-imports", "-c", script, env=env)


def wrk(url, body_file, headers, seconds, connections, lua_path):
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", lua_path]
    args += [part for k, v in headers.items() for part in ("-H", f"{k}: {v}")]
    args.append(url)
    env = dict(os.environ, WRK_BODY=body_file)
    out = subprocess.run(args, capture_output=True, text=True, env=env).stdout
    line = next(line for line in out.splitlines() if line.startswith("JSON "))
    figures = json.loads(line[5:])
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--topic", default="orders/create")
    opts = parser.parse_args()

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.bench_settings",
               DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}", REDIS_URL="redis://127.0.0.1:6379/14",
               SHOPSEG_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    os.chdir(ROOT)
    prepare_database(env)
    sh("redis-cli", "-n", "14", "FLUSHDB")

    from shopseg.shopify.signatures import webhook_hmac

    secret = "shopseg-dev-secret-0123456789abcdef0123456789"
    sample = json.loads((ROOT / "bench" / "order_sample.json").read_text())
    body = json.dumps(sample).encode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": opts.topic,
               "X-Shopify-Shop-Domain": SHOP, "X-Shopify-API-Version": "2026-10",
               "X-Shopify-Event-Id": "bench", "X-Shopify-Triggered-At": "2026-11-20T10:00:00Z",
               "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret)}
    tmp = Path(tempfile.mkdtemp(prefix="shopseg-bench-"))
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    lua = tmp / "post.lua"
    # wrk.body must be set from Lua; read the exact signed bytes from the file.
    lua.write_text(f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*a"); f:close()\n' + LUA)

    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "bench.bench_settings_wsgi:application", "--bind",
         f"127.0.0.1:{opts.port}", "--workers", str(opts.workers), "--log-level", "warning"],
        env=env, cwd=ROOT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{opts.port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        base = f"http://127.0.0.1:{opts.port}"
        # warm up both paths (connections, imports)
        wrk(f"{base}/bench/noop", body_file, headers, 2, opts.connections, str(lua))
        wrk(f"{base}/webhooks/shopify", body_file, headers, 2, opts.connections, str(lua))
        noop = wrk(f"{base}/bench/noop", body_file, headers, opts.seconds, opts.connections, str(lua))
        hook = wrk(f"{base}/webhooks/shopify", body_file, headers, opts.seconds, opts.connections, str(lua))
    finally:
        server.terminate()
        server.wait(timeout=20)
    recorded = sh(sys.executable, "manage.py", "shell", "--no-imports", "-c",
                  "from webhooks.models import WebhookEvent; print(WebhookEvent.objects.count())", env=env).stdout
    queued = sh("redis-cli", "-n", "14", "LLEN", "default").stdout.strip()

    print(f"gunicorn workers={opts.workers}, wrk connections={opts.connections}, {opts.seconds}s per run")
    for name, f in (("no-op Django view (baseline)", noop), ("POST /webhooks/shopify", hook)):
        print(f"{name:30s} {f['rps']:8.0f} req/s   p50 {f['p50']:6.1f} ms   p90 {f['p90']:6.1f} ms   "
              f"p99 {f['p99']:6.1f} ms   errors {f['errors']}   non-2xx {f['non2xx']}")
    print(f"deliveries recorded: {recorded.strip()}   tasks queued in Redis: {queued}")
    print(f"throughput / 500 per s target: {hook['rps'] / 500:.2f}")
    print(f"p99 / 50 ms target:            {hook['p99'] / 50:.2f} (lower is better)")
    print(f"throughput / no-op view:       {hook['rps'] / noop['rps']:.2f} (target >= 0.60)")
    sh("redis-cli", "-n", "14", "FLUSHDB")


if __name__ == "__main__":
    main()
