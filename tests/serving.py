"""The app as production serves it, for tests over real HTTP: gunicorn running shopseg.wsgi (the fast
paths in front of Django) on the test database."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_start(redis_url: str, app: str = "shopseg.wsgi:application",
                   env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """gunicorn (1 worker, 2 threads) serving `app` on the test database; the process and its URL."""
    db = connection.settings_dict
    port = _free_port()
    environ = dict(os.environ, DJANGO_SETTINGS_MODULE="shopseg.settings", REDIS_URL=redis_url,
                   DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
                                f"{db['PORT'] or 5432}/{db['NAME']}",
                   SHOPIFY_API_SECRET=settings.SHOPIFY_API_SECRET, SHOPSEG_LOG_LEVEL="WARNING")
    environ.update(env or {})
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"),
                               "-c", str(ROOT / "shopseg" / "gunicorn_conf.py"), app,
                               "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2",
                               "--access-logfile", "/dev/null"],
                              env=environ, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"gunicorn did not start: {server.stderr.read().decode()[-2000:]}")


def gunicorn_stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
