"""Webhook endpoint throughput and latency under gunicorn + PostgreSQL, against a no-op view.

    .venv/bin/python bench/webhook_endpoint_bench.py [--seconds 15] [--rounds 1] [--connections 16]
        [--workers N] [--threads N] [--no-fast-path] [--access-log]

Starts gunicorn with the app's gunicorn config (shopseg/gunicorn_conf.py: worker class, workers and
threads as production runs them, unless overridden) on a dedicated PostgreSQL database with Redis
as the broker (deliveries are recorded and scheduled exactly as in production; no worker drains
the queue during the run), serving the app's WSGI entry point (bench/bench_settings_wsgi.py: the
same fast path as shopseg/wsgi.py) plus a no-op Django view. Then drives it with wrk: the no-op
view (the baseline), then POST /webhooks/shopify with validly signed orders/create deliveries,
each with a fresh X-Shopify-Webhook-Id; with --rounds N the two alternate N times and the figures
add up (a fairer ratio on a machine whose load changes). Prints requests/s, latency percentiles,
the ratios to the targets (500/s, p99 <= 50 ms, >= 60% of the no-op view) and the CPU time each
part of the system spent per request.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.stack import TICK, children, cpu_seconds, wait_http  # noqa: E402

DB = "shopseg_bench_webhooks"
SHOP = "bench-shop.myshopify.com"
LUA = r"""
counter = 0
request = function()
  counter = counter + 1
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Shopify-Webhook-Id"] = string.format("%s-%s-%d", run_id, id_prefix, counter)
  return wrk.format("POST", wrk.path, headers, wrk.body)
end
thread_number = 0
setup = function(thread)
  thread_number = thread_number + 1
  thread:set("id_prefix", tostring(thread_number))
  thread:set("run_id", run_id)
end
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


def processes(server_pid: int) -> dict[str, list[int]]:
    """The pids whose CPU is the system under test: gunicorn, its PostgreSQL backends, Redis."""
    backends = sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc",
                  f"SELECT pid FROM pg_stat_activity WHERE datname = '{DB}' AND pid <> pg_backend_pid()").stdout
    redis = sh("pgrep", "-x", "redis-server", check=False).stdout
    return {"gunicorn": [server_pid, *children(server_pid)], "postgres": [int(p) for p in backends.split()],
            "redis": [int(p) for p in redis.split()]}


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (every process, other people's included)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK


def wrk(url, headers, seconds, connections, lua_path, server_pid=None):
    # wrk seeds Lua's random numbers the same way every run: a fresh run id keeps webhook ids of
    # one run from repeating another's (a repeat is a duplicate delivery, cheaper to answer).
    script = Path(lua_path).with_name(f"run-{uuid.uuid4().hex}.lua")
    script.write_text(f'run_id = "{uuid.uuid4().hex}"\n' + Path(lua_path).read_text())
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script)]
    args += [part for k, v in headers.items() for part in ("-H", f"{k}: {v}")]
    args.append(url)
    pids = processes(server_pid) if server_pid else {}
    before = {name: sum(cpu_seconds(p) for p in ps) for name, ps in pids.items()}
    machine, kids = machine_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in out.splitlines() if line.startswith("JSON "))
    figures = json.loads(line[5:])
    figures["cpu"] = {name: sum(cpu_seconds(p) for p in ps) - before[name] for name, ps in pids.items()}
    figures["cpu"]["wrk"] = (after.ru_utime + after.ru_stime) - (kids.ru_utime + kids.ru_stime)
    figures["cpu"]["machine"] = machine_cpu() - machine
    return figures


def combine(runs: list[dict]) -> dict:
    """Several runs of one path as one: requests and CPU add up, percentiles weighted by requests."""
    total = sum(r["requests"] for r in runs)
    out = {"requests": total, "seconds": sum(r["seconds"] for r in runs),
           "errors": sum(r["errors"] for r in runs), "non2xx": sum(r["non2xx"] for r in runs)}
    for p in ("p50", "p90", "p99"):
        out[p] = sum(r[p] * r["requests"] for r in runs) / total
    out["p99_max"] = max(r["p99"] for r in runs)
    out["cpu"] = {k: sum(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]}
    out["rps"] = total / out["seconds"]
    return out


def redis_sets() -> int:
    stats = sh("redis-cli", "INFO", "commandstats").stdout
    line = next((x for x in stats.splitlines() if x.startswith("cmdstat_set:")), "")
    return int(line.split("calls=")[1].split(",")[0]) if line else 0


def commits() -> int:
    """Transactions committed in the bench database so far (PostgreSQL's statistics)."""
    out = sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-At", "-c",
             f"SELECT pg_stat_force_next_flush(); SELECT xact_commit FROM pg_stat_database WHERE datname = '{DB}'").stdout
    return int(out.split()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1, help="alternate no-op and webhook runs this many times")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, help="override shopseg/gunicorn_conf.py")
    parser.add_argument("--threads", type=int, help="override shopseg/gunicorn_conf.py")
    parser.add_argument("--worker-class", help="override shopseg/gunicorn_conf.py")
    parser.add_argument("--access-log", action="store_true", help="keep the config's access log (to /dev/null)")
    parser.add_argument("--no-fast-path", action="store_true", help="serve the webhook through Django's view")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--topic", default="orders/create")
    opts = parser.parse_args()

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.bench_settings",
               DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}", REDIS_URL="redis://127.0.0.1:6379/14",
               SHOPSEG_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    if opts.no_fast_path:
        env["SHOPSEG_BENCH_NO_FAST_PATH"] = "1"
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

    # The app's gunicorn config, with the access log sent to /dev/null (--access-log) or left out.
    conf = tmp / "gunicorn_conf.py"
    conf.write_text(f"exec(open({str(ROOT / 'shopseg' / 'gunicorn_conf.py')!r}).read())\n"
                    f"accesslog = {'/dev/null' if opts.access_log else None!r}\n")
    args = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(conf), "bench.bench_settings_wsgi:application",
            "--bind", f"127.0.0.1:{opts.port}", "--log-level", "warning"]
    for flag, value in (("--workers", opts.workers), ("--threads", opts.threads),
                        ("--worker-class", opts.worker_class)):
        if value:
            args += [flag, str(value)]
    server = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{opts.port}"
        wait_http(f"{base}/healthz")
        # warm up both paths (connections, imports, prepared statements)
        wrk(f"{base}/bench/noop", headers, 2, opts.connections, str(lua))
        wrk(f"{base}/webhooks/shopify", headers, 2, opts.connections, str(lua))
        config = sh(sys.executable, "-c", f"import runpy, json; c = runpy.run_path({str(conf)!r}); "
                    "print(json.dumps({k: c.get(k) for k in ('worker_class', 'workers', 'threads')}))").stdout
        sets_before = redis_sets()
        noops, hooks = [], []
        hook_commits = 0
        for _ in range(opts.rounds):
            noops.append(wrk(f"{base}/bench/noop", headers, opts.seconds, opts.connections, str(lua), server.pid))
            before = commits()
            hooks.append(wrk(f"{base}/webhooks/shopify", headers, opts.seconds, opts.connections, str(lua),
                             server.pid))
            time.sleep(11)   # an idle backend reports its counts within PostgreSQL's 10 s idle interval
            hook_commits += commits() - before
        sets = redis_sets() - sets_before
    finally:
        server.terminate()
        server.wait(timeout=20)
    noop, hook = combine(noops), combine(hooks)
    recorded = sh(sys.executable, "manage.py", "shell", "--no-imports", "-c",
                  "from webhooks.models import WebhookEvent; print(WebhookEvent.objects.count())", env=env).stdout
    queued = sh("redis-cli", "-n", "14", "LLEN", "default").stdout.strip()

    print(f"gunicorn -c shopseg/gunicorn_conf.py ({json.loads(config)}); overrides: workers={opts.workers} "
          f"threads={opts.threads} worker_class={opts.worker_class}; access log "
          f"{'on' if opts.access_log else 'off'}; fast path {'off' if opts.no_fast_path else 'on'}; "
          f"wrk connections={opts.connections}, {opts.rounds} x {opts.seconds}s per path")
    for name, f in (("no-op Django view (baseline)", noop), ("POST /webhooks/shopify", hook)):
        print(f"{name:30s} {f['rps']:8.0f} req/s   p50 {f['p50']:6.1f} ms   p90 {f['p90']:6.1f} ms   "
              f"p99 {f['p99']:6.1f} ms (worst run {f['p99_max']:.1f})   errors {f['errors']}   non-2xx {f['non2xx']}")
    print("CPU per request, microseconds (gunicorn = master + workers; postgres = this database's backends):")
    for name, f in (("no-op", noop), ("webhook", hook)):
        parts = "  ".join(f"{k} {1e6 * v / f['requests']:5.0f}" for k, v in f["cpu"].items() if k != "machine")
        print(f"  {name:8s} {parts}   whole machine {1e6 * f['cpu']['machine'] / f['requests']:5.0f}")
    print(f"deliveries answered: {sum(r['requests'] for r in hooks)} (+ warm-up)   recorded: {recorded.strip()}   Redis SETs during the runs: {sets}   "
          f"tasks queued in Redis: {queued}")
    print(f"commits during the webhook runs: {hook_commits} for {hook['requests']} deliveries "
          f"({hook['requests'] / max(1, hook_commits):.2f} deliveries per commit)")
    print(f"throughput / 500 per s target: {hook['rps'] / 500:.2f}")
    print(f"p99 / 50 ms target:            {hook['p99'] / 50:.2f} (lower is better)")
    print(f"throughput / no-op view:       {hook['rps'] / noop['rps']:.2f} (target >= 0.60)")
    sh("redis-cli", "-n", "14", "FLUSHDB")


if __name__ == "__main__":
    main()
