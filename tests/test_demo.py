"""The README's demo command, run as a newcomer would (smaller shop, its own ports and state)."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEMO_DATABASE = "shopseg_demo_test"


@pytest.fixture(autouse=True)
def drop_demo_database():
    yield
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')


def test_demo_installs_backfills_repairs_and_prints_the_admin_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [sys.executable, "manage.py", "demo", "--exit-after-install", "--customers", "300",
         "--database-name", DEMO_DATABASE,
         "--app-port", str(free_port()), "--devstore-port", str(free_port()), "--state-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "-> " in out and "/auth/callback" in out                      # the real OAuth hops
    assert "database: postgres" in out                                   # PostgreSQL answers here
    assert "backfill done: 300 customers" in out
    assert "reconciliation repaired" in out and "repaired 0 rows" not in out
    # Segments from every template, computed over the history, then moved by the live traffic.
    assert "seg:vip " in out and "seg:high-value-cart-abandoners" in out
    assert "entries (definition)" in out and "(event)" in out
    # Membership written to devstore as tags, read back from devstore itself.
    shown = [line for line in out.splitlines() if "in Shopify now:" in line]
    assert len(shown) == 2 and all("seg:" in line for line in shown), out[-3000:]
    assert "0 changes still queued" in out
    # What the segments are worth: KPI history backfilled when each segment was first computed.
    assert "of the last 30 days' revenue (90 days of KPIs" in out, out[-3000:]
    assert "/admin/apps/shopseg-dev-key" in out.splitlines()[-1]
