"""The app as production runs it, for benchmarks that need the whole system: devstore in this process
(a seeded shop), the app under gunicorn, one Celery worker (prefork, 2 processes) and beat on Redis,
a fresh PostgreSQL database, and the shop installed through the real OAuth flow and backfilled.

    with Stack(db="shopseg_bench_x", shop="bench-x.myshopify.com", customers=3000, env={...}) as stack:
        ...   # stack.store (devstore), stack.app_url, stack.shop (the app's Shop row)

Django is set up in this process on the same database and Redis, so a benchmark can read the
app's tables. The worker's and beat's output go to stack.worker_log.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
REDIS = "redis://127.0.0.1:6379/12"
TICK = os.sysconf("SC_CLK_TCK")
APP_KEY, APP_SECRET = "bench-stack-key", "bench-stack-secret-0123456789abcdef0123456789abcdef"


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank q-quantile of `values` (q from 0 to 1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def wait_http(url: str, seconds: float = 30) -> bool:
    """Poll `url` until it answers 200 (True) or `seconds` pass (False)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def fresh_database(db: str) -> str:
    url = f"postgres://postgres@127.0.0.1:5432/{db}"
    psql(f"DROP DATABASE IF EXISTS {db}")
    psql(f"CREATE DATABASE {db}")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                   env={**os.environ, "DATABASE_URL": url})
    return url


class Stack:
    def __init__(self, *, db: str, shop: str, customers: int, env: dict[str, str] | None = None,
                 history_days_ago: int = 10, seed: int = 7, gunicorn: tuple[int, int] | None = (2, 4)):
        """`gunicorn`: (workers, threads); None runs shopseg/gunicorn_conf.py's own."""
        self.db, self.domain, self.customers, self.seed = db, shop, customers, seed
        self.history_end = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=history_days_ago)
        self.extra_env, self.gunicorn = env or {}, gunicorn
        self.children: list[subprocess.Popen] = []

    def __enter__(self) -> "Stack":
        from devstore.config import DevstoreConfig

        url = fresh_database(self.db)
        import redis as redis_lib

        redis_lib.Redis.from_url(REDIS).flushdb()
        dev_port, app_port = free_port(), free_port()
        self.devstore_url, self.app_url = f"http://127.0.0.1:{dev_port}", f"http://127.0.0.1:{app_port}"
        self.env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "SHOPIFY_API_KEY": APP_KEY,
                    "SHOPIFY_API_SECRET": APP_SECRET, "SHOPSEG_APP_URL": self.app_url, "DJANGO_ALLOWED_HOSTS": "*",
                    "SHOPIFY_SHOP_BASE_URL": self.devstore_url + "/shops/{shop}", "SHOPSEG_LOG_LEVEL": "WARNING",
                    "DJANGO_SETTINGS_MODULE": "shopseg.settings", **self.extra_env}
        os.environ.update(self.env)
        import django

        django.setup()
        from devstore.generator import seed_shop
        from devstore.server import DevstoreServer
        from devstore.state import DevStore

        self.tmp = Path(tempfile.mkdtemp(prefix="bench-stack-"))
        self.worker_log = self.tmp / "worker.log"
        self.store = DevStore(self.tmp / "devstore.db")
        self.server = DevstoreServer(self.store, DevstoreConfig(public_url=self.devstore_url), port=dev_port).start()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.store.app_register(api_key=APP_KEY, api_secret=APP_SECRET, app_url=self.app_url + "/")
        self.store.shop_create(self.domain, plan="shopify")
        seed_shop(self.store, self.domain, customers=self.customers, seed=self.seed, now=self.history_end)
        bin_dir = Path(sys.executable).parent
        log = self.worker_log.open("w")
        sizing = ["--workers", str(self.gunicorn[0]), "--threads", str(self.gunicorn[1])] if self.gunicorn else []
        self.children = [
            subprocess.Popen([str(bin_dir / "gunicorn"), "-c", str(ROOT / "shopseg" / "gunicorn_conf.py"),
                              "shopseg.wsgi", "--bind", f"127.0.0.1:{app_port}", *sizing,
                              "--access-logfile", "/dev/null"],
                             cwd=ROOT, env=self.env, start_new_session=True),
            subprocess.Popen([str(bin_dir / "celery"), "-A", "shopseg", "worker", "--loglevel", "warning",
                              "--concurrency", "2"], cwd=ROOT, env=self.env, start_new_session=True,
                             stdout=log, stderr=subprocess.STDOUT),
            subprocess.Popen([str(bin_dir / "celery"), "-A", "shopseg", "beat", "--loglevel", "warning",
                              "--schedule", str(self.tmp / "beat-schedule")], cwd=ROOT, env=self.env,
                             start_new_session=True, stdout=log, stderr=subprocess.STDOUT),
        ]
        try:
            self._install()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _install(self) -> None:
        from segments.mirror.models import BackfillStatus, ShopSync
        from segments.shops.models import Shop

        wait_http(f"{self.app_url}/healthz")
        with httpx.Client(follow_redirects=True, timeout=120) as browser:
            landed = browser.get(f"{self.devstore_url}/shops/{self.domain}/admin/_install/{APP_KEY}")
            if landed.status_code != 200:
                raise SystemExit(f"install failed: {landed.status_code}")
        self.shop = Shop.objects.get(domain=self.domain)
        started = time.perf_counter()
        while ShopSync.objects.filter(shop=self.shop).values_list("backfill_status", flat=True).first() != \
                BackfillStatus.DONE:
            if time.perf_counter() - started > 900:
                raise SystemExit("backfill did not finish")
            time.sleep(1)
        print(f"installed and backfilled {self.customers:,} customers in {time.perf_counter() - started:.0f} s",
              flush=True)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each part: the endpoint (gunicorn), the worker (Celery worker and
        beat) and PostgreSQL (this database's backends, as connected now)."""
        gunicorn, worker, beat = self.children
        backends = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.db}' AND pid <> pg_backend_pid()")
        return {"endpoint": sum(map(cpu_seconds, [gunicorn.pid, *children(gunicorn.pid)])),
                "worker": sum(map(cpu_seconds, [worker.pid, *children(worker.pid), beat.pid])),
                "postgres": sum(map(cpu_seconds, [int(p) for p in backends.split()]))}

    def __exit__(self, *exc) -> None:
        for child in self.children:      # the parent only: gunicorn and Celery stop their own children
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        self.server.stop()
