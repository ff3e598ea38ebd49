"""The README's demo command, run as a newcomer would (smaller shop, its own ports, state, database
and Redis database): it installs, backfills, writes tags and prints the admin URL, and then the
product keeps working on its own: a segment saved in the admin gets its tag in devstore, written by
the demo's real worker and beat, and devstore's live traffic keeps arriving as webhooks."""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import app_frame, screenshot

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_DATABASE = "shopseg_demo_test"
DEMO_REDIS_DB = 14
CUSTOMERS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """`manage.py demo` in a child process, its output collected line by line as it comes."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.devstore_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
        env["REDIS_URL"] = f"redis://127.0.0.1:6379/{DEMO_REDIS_DB}"   # not the developer's demo database
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--customers", str(CUSTOMERS), "--database-name", DEMO_DATABASE,
             "--app-port", str(free_port()), "--devstore-port", str(self.devstore_port), "--state-dir", str(state),
             "--live-rate", "2"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def out(self) -> str:
        return "\n".join(self.lines)

    def admin_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines):
                if "shopseg admin (embedded" in line and i + 1 < len(self.lines):
                    return self.lines[i + 1].strip()
            if self.process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(1)
        raise AssertionError(f"the demo printed no admin URL:\n{self.out[-4000:]}")

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first line matching `pattern`, once the demo has printed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            found = next(filter(None, (re.search(pattern, line) for line in self.lines)), None)
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"the demo printed no line matching {pattern!r}:\n{self.out[-4000:]}")

    def devstore_customers_tagged(self, tag: str) -> int:
        """Counted in devstore's own state file: what the Shopify here holds."""
        with sqlite3.connect(f"file:{self.state / 'devstore.db'}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute("SELECT tags FROM customers").fetchall()
        return sum(f'"{tag}"' in tags for (tags,) in rows)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    running = Demo(tmp_path_factory.mktemp("demo"))
    try:
        running.admin_url(timeout=900)
        yield running
    finally:
        running.stop()
        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')


def test_demo_installs_backfills_repairs_and_prints_the_admin_url(demo):
    out = demo.out
    assert "database: PostgreSQL on 127.0.0.1:5432" in out                # PostgreSQL answers here
    assert "a Celery worker (2 processes) and beat started" in out         # never in-process tasks
    assert "-> " in out and "/auth/callback" in out                        # the real OAuth hops
    assert f"backfill done: {CUSTOMERS} customers" in out
    assert "reconciliation repaired" in out and "repaired 0 rows" not in out
    # Segments from every template, computed over the history, then moved by the live traffic.
    assert "seg:vip " in out and "seg:high-value-cart-abandoners" in out
    assert "entries (definition)" in out and "(event)" in out
    # Membership written to devstore as tags, read back from devstore itself.
    shown = [line for line in out.splitlines() if "in Shopify now:" in line]
    assert len(shown) == 1 and "seg:" in shown[0], out[-3000:]
    assert "0 changes still queued" in out
    # The store lived its last 28 days: observed KPI days, and the planted effect measured.
    assert "28 days lived (" in out and "observed KPI days" in out, out[-3000:]
    assert "high-value repeat, treated vs held out: " in out
    # What the segments are worth: KPI history, estimated before the days the store lived.
    assert "of the last 30 days' revenue (90 days of KPIs" in out, out[-3000:]
    # The storefront: browsing arrived through the pixel's ingest, none refused, rolled up by the worker.
    browsing = re.search(r"([\d,]+) events from ([\d,]+) browsers \(([\d,]+) joined to customers, 0 batches "
                         r"refused\): ([\d,]+) product views", out)
    assert browsing and all(int(n.replace(",", "")) > 0 for n in browsing.groups()), out[-3000:]
    # ... and the browsing segments filled up with the customers whose browsers signed in.
    filled = out[out.index("the browsing segments fill up"):out.index("browse it yourself")]
    new_visitors = re.search(r"seg:new-visitors +([\d,]+) members", filled)
    assert new_visitors and int(new_visitors[1].replace(",", "")) > 0, filled[:3000]
    assert "seg:ad-driven-visitors" in filled and "seg:vip " not in filled
    anonymous = re.search(r"seg:new-visitors +[\d,]+ members \+ ([\d,]+) anonymous visitors", filled)
    assert anonymous and int(anonymous[1].replace(",", "")) > 0, filled[:3000]
    assert "/store/ (accept analytics" in out
    # The theme app extension: the VIP hero for a VIP only, and a new visitor's segments through the app proxy.
    assert re.search(r"a VIP signed in \(\d+\) sees the hero: New arrivals, first for our VIPs\n", out), out[-3000:]
    assert re.search(r"a customer who is not one \(\d+\) sees the hero: Winter sale: 20% off\n", out)
    proxied = re.search(r"asks the app proxy for its segments .*: (\{.*\})\n", out)
    assert proxied and "seg:new-visitors" in json.loads(proxied[1])["segments"], out[-3000:]
    # The cart abandoners' playbook picked in the admin became two real codes; a member sees the offer for
    # their cart's value and pays with it, a non-member is refused.
    codes = re.search(r"the worker wrote 2 discount codes limited to the segment's members in Shopify: "
                      r"([A-Z-]+)-10OFF, \1-FREESHIP\n", out)
    assert codes, out[-3000:]
    assert re.search(r"a cart abandoner \(\d+\) with an empty cart sees: 10% off your cart\n", out)
    assert re.search(r"a cart abandoner \(\d+\) with a \$[\d,.]+ cart sees: Free shipping on your cart\n", out)
    assert re.search(rf"they pay with {codes[1]}-FREESHIP: order \d+ ships free; customer \d+, not in the segment, "
                     r"is refused: \w", out), out[-3000:]
    # Profit from Shopify's unit costs, a 40% margin assumed where a product has none.
    assert "the merchant assumes a 40% margin for products without a unit cost" in out
    assert re.search(r"profit this month \(unit costs from Shopify\): \$[\d,.]+ gross, \$[\d,.]+ per customer", out), \
        out[-3000:]
    # Predictions: fitted after the backfill, with their quality on the 90 days the quality fit did not see.
    fitted = re.search(r"predictions: ([\d,]+) buyers fitted and scored in [\d.]+ s", out)
    assert fitted and int(fitted[1].replace(",", "")) > 50, out[-3000:]
    assert re.search(r"fitted without the last 90 days, they predicted [\d,]+ orders from [\d,]+ customers; "
                     r"[\d,]+ happened", out)
    assert "seg:likely-to-churn" in out and "seg:ordering-soon" in out
    # Shopify Flow heard of customers entering and leaving segments, sent by the worker.
    flow = re.search(r"Shopify Flow received ([\d,]+) triggers from the worker: ([\d,]+) \"Customer entered segment\"", out)
    assert flow and int(flow[1].replace(",", "")) > 0 and int(flow[2].replace(",", "")) > 0, out[-3000:]
    assert "/admin/apps/shopseg-dev-key" in demo.admin_url(0)
    # The operator's admin: its URL and a fresh password printed, and they let the operator in.
    found = demo.wait_for(r"operator's read-only admin .*: (\S+) \(user operator, password (\S+)\)", timeout=60)
    with httpx.Client(base_url=found[1], follow_redirects=True, timeout=30) as operator:
        login = operator.get("login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        page = operator.post("login/", data={"username": "operator", "password": found[2],
                                             "csrfmiddlewaretoken": token, "next": "/ops/admin/"},
                             headers={"Referer": str(login.url)})
        assert page.status_code == 200 and "Webhook events" in page.text, page.text[:2000]


def test_after_the_script_a_saved_segment_gets_its_tag_and_live_traffic_flows(demo, chromium):
    admin_url = demo.admin_url(0).split("?")[0].rstrip("/")
    shop = admin_url.split("/shops/")[1].split("/")[0]
    control = f"http://127.0.0.1:{demo.devstore_port}/_control/shops/{shop}"
    tag = "seg:e2e-two-orders"
    assert demo.devstore_customers_tagged(tag) == 0

    # Given the demo's script has ended and the store keeps living
    live = httpx.get(f"{control}/live", timeout=30).json()
    assert live["running"]

    # When the merchant saves a new segment in the admin
    context = chromium.new_context(viewport={"width": 1280, "height": 1600})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{admin_url}/admin/segments/new")
        frame = app_frame(page)
        frame.wait_for_selector("#rules .node")
        frame.fill("input[data-path='include.all[0].value']", "2")
        frame.fill("#setting-name", "Two or more orders (e2e)")
        frame.fill("#setting-handle", "e2e-two-orders")
        expect(frame.locator(".diff-tag").first).to_have_text(tag)
        screenshot(page, "demo-builder")
        frame.locator("[data-action='save']").first.click()
        app_frame(page).wait_for_url(lambda url: "/segments/new" not in url and "id_token=" in url, wait_until="load")
    finally:
        context.close()

    # Then the demo's worker and beat put its tag on customers in devstore, with no one running a command
    deadline = time.monotonic() + 120
    while demo.devstore_customers_tagged(tag) == 0 and time.monotonic() < deadline:
        time.sleep(1)
    tagged = demo.devstore_customers_tagged(tag)
    assert tagged > 0, demo.out[-2000:]

    # And devstore's live traffic keeps arriving as webhooks that the worker applies
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=DEMO_DATABASE) as conn:
        def processed() -> int:
            return conn.execute("SELECT COUNT(*) FROM webhooks_webhookevent WHERE status = 'processed' "
                                "AND topic IN ('orders/create', 'checkouts/create', 'carts/create', "
                                "'customers/update', 'carts/update', 'refunds/create', 'orders/cancelled')"
                                ).fetchone()[0]
        before = processed()
        deadline = time.monotonic() + 120
        while processed() <= before and time.monotonic() < deadline:
            conn.commit()
            time.sleep(1)
        assert processed() > before
    assert sum(httpx.get(f"{control}/live", timeout=30).json()["actions"].values()) > 0
