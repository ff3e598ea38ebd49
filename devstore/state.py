"""devstore's own state: one SQLite file, thread-local connections, and an event bus.

Everything a shop holds lives here (customers, orders, checkouts, products, app installs,
tokens, webhook subscriptions, bulk operations). Rows are plain SQLite; the GraphQL layer,
the webhook sender, the generator and the simulator read and write them through `DevStore`.

Conventions:
- ids are integers in realistic Shopify ranges; GIDs are built with `gid(kind, id)`.
- money is stored as integer cents in the shop currency and rendered with two decimals.
- times are UTC ISO-8601 strings `YYYY-MM-DDTHH:MM:SSZ`, so they compare as text.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .schema import SCHEMA

# Realistic id ranges, one per resource kind, so ids never collide across kinds.
ID_BASE = {
    "Shop": 60_000_000,
    "Product": 8_000_000_000,
    "ProductVariant": 44_000_000_000,
    "InventoryItem": 46_000_000_000,
    "Customer": 7_000_000_000,
    "Order": 5_000_000_000,
    "LineItem": 13_000_000_000,
    "Refund": 900_000_000,
    "Checkout": 30_000_000_000,
    "Cart": 50_000_000_000,
    "WebhookSubscription": 1_200_000_000,
    "BulkOperation": 4_000_000_000,
    "WebPixel": 100_000_000,
}

Listener = Callable[["Event"], None]


@dataclass(frozen=True)
class Event:
    """Something changed in a shop; the webhook sender turns it into deliveries."""

    shop: str
    topic: str          # REST form: orders/create, customer.tags_added, app/uninstalled, ...
    kind: str           # resource kind: Order, Customer, Checkout, Cart, Product, Refund, Shop, ...
    id: int | None
    extra: dict | None = None   # topic-specific details (e.g. the tags added), or a full payload


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def gid(kind: str, id_: int) -> str:
    return f"gid://shopify/{kind}/{id_}"


def parse_gid(value: str, kind: str | None = None) -> int | None:
    """`gid://shopify/Customer/7` -> 7; None if malformed or of another kind."""
    prefix = "gid://shopify/"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    parts = value[len(prefix):].split("/")
    if len(parts) != 2 or (kind and parts[0] != kind) or not parts[1].isdigit():
        return None
    return int(parts[1])


def money(cents: int) -> str:
    """Integer cents -> Shopify's decimal string with two places."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class DevStore:
    """Handle on one devstore state file. Safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._local = threading.local()
        self._listeners: list[Listener] = []
        self._id_lock = threading.Lock()
        self.conn().executescript(SCHEMA)  # executescript manages its own transaction

    # -- connections ---------------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction; events emitted inside it fire after commit."""
        conn = self.conn()
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        self._local.depth = 1
        self._local.pending = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            self._local.pending = []
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0
        pending, self._local.pending = self._local.pending, []
        for event in pending:
            self._dispatch(event)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- ids -----------------------------------------------------------------------------------
    def next_ids(self, kind: str, count: int = 1) -> range:
        """Reserve `count` consecutive ids for a resource kind."""
        with self._id_lock, self.tx() as conn:
            row = conn.execute("SELECT value FROM counters WHERE name = ?", (kind,)).fetchone()
            start = row["value"] if row else ID_BASE[kind] + 1
            conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (kind, start + count),
            )
        return range(start, start + count)

    def next_id(self, kind: str) -> int:
        return self.next_ids(kind, 1)[0]

    # -- events --------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: Event) -> None:
        """Queue an event; it is dispatched when the surrounding transaction commits."""
        if getattr(self._local, "depth", 0):
            self._local.pending.append(event)
        else:
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- shops and apps ------------------------------------------------------------------------
    def shop(self, domain: str) -> sqlite3.Row | None:
        return self.conn().execute("SELECT * FROM shops WHERE domain = ?", (domain,)).fetchone()

    def shop_create(self, domain: str, *, name: str | None = None, currency: str = "USD",
                    iana_timezone: str = "America/New_York", plan: str = "shopify") -> sqlite3.Row:
        existing = self.shop(domain)
        if existing is not None:
            return existing
        shop_id = self.next_id("Shop")
        handle = domain.split(".")[0]
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO shops (domain, id, name, email, currency, iana_timezone, plan, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (domain, shop_id, name or handle.replace("-", " ").title(), f"owner@{handle}.example",
                 currency, iana_timezone, plan, iso(utcnow())),
            )
        return self.shop(domain)

    def shops(self) -> list[sqlite3.Row]:
        return self.conn().execute("SELECT * FROM shops ORDER BY domain").fetchall()

    def app_register(self, *, api_key: str, api_secret: str, app_url: str,
                     redirect_urls: list[str] | None = None, previous_secret: str | None = None) -> None:
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO apps (api_key, api_secret, previous_secret, app_url, redirect_urls) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(api_key) DO UPDATE SET api_secret = excluded.api_secret, "
                "previous_secret = excluded.previous_secret, app_url = excluded.app_url, "
                "redirect_urls = excluded.redirect_urls",
                (api_key, api_secret, previous_secret, app_url, json.dumps(redirect_urls or [])),
            )

    def app(self, api_key: str) -> sqlite3.Row | None:
        return self.conn().execute("SELECT * FROM apps WHERE api_key = ?", (api_key,)).fetchone()

    def apps(self) -> list[sqlite3.Row]:
        return self.conn().execute("SELECT * FROM apps").fetchall()

    def installation(self, shop: str, api_key: str) -> sqlite3.Row | None:
        return self.conn().execute(
            "SELECT * FROM installations WHERE shop = ? AND api_key = ? AND uninstalled_at IS NULL",
            (shop, api_key),
        ).fetchone()

    # -- faults (control API) ------------------------------------------------------------------
    def fault(self, shop: str, kind: str) -> dict | None:
        row = self.conn().execute(
            "SELECT params FROM faults WHERE kind = ? AND shop IN (?, '*') ORDER BY shop = '*' LIMIT 1",
            (kind, shop),
        ).fetchone()
        return json.loads(row["params"]) if row else None

    def fault_set(self, shop: str, kind: str, params: dict | None) -> None:
        with self.tx() as conn:
            if params is None:
                conn.execute("DELETE FROM faults WHERE shop = ? AND kind = ?", (shop, kind))
            else:
                conn.execute(
                    "INSERT INTO faults (shop, kind, params) VALUES (?, ?, ?) "
                    "ON CONFLICT(shop, kind) DO UPDATE SET params = excluded.params",
                    (shop, kind, json.dumps(params)),
                )

    def faults_clear(self) -> None:
        with self.tx() as conn:
            conn.execute("DELETE FROM faults")
