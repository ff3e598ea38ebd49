"""Signed webhook deliveries: store events become `webhook_deliveries` rows, POSTed with Shopify's retries.

Enqueueing happens in the listener, right after the writing transaction commits: the payload is built
from the rows as they are then (as Shopify does), and one row is written per matching subscription,
each with its own X-Shopify-Webhook-Id and all sharing the event's X-Shopify-Event-Id. Delivery runs
on a background thread: shops are drained in parallel (one slow endpoint holds back only its own shop,
for at most one per-attempt timeout per row) and each shop's rows go out one by one. The
enqueueing half, with the choice of targets, is in webhook_enqueue.py.

Shopify's rules kept here: only 2xx counts (3xx is a failure, redirects are not followed); 1 s to
connect and `config.webhook_timeout` to answer; 8 retries over about 4 h with exponential backoff
(scaled by `config.time_scale`); after `config.webhook_failures_before_removal` consecutive failed
attempts an API-created subscription is deleted. Compliance topics go to the app's configured
compliance URI without subscriptions; `app/uninstalled` still reaches the app that was just removed,
after which that app's subscriptions on the shop are dropped.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .config import DevstoreConfig
from .state import DevStore
from .webhook_enqueue import EnqueueMixin

log = logging.getLogger("devstore.webhooks")

USER_AGENT = "Shopify-Captain-Hook"
CONNECT_TIMEOUT = 1.0
# Shopify: 8 retries over about 4 hours; doubling from a minute gives 1, 2, 4, ... 128 min (4.25 h in all).
RETRY_DELAYS = tuple(60.0 * 2 ** n for n in range(8))
SHOP_BATCH = 50          # rows a worker claims per round, so new work for the shop is picked up between rounds
IDLE_POLL = 0.5          # seconds the loop sleeps at most when nothing is due
# wait_idle also waits out retries due this soon (seconds): with test time scales the first few backoffs
# settle, while a long backoff (or an endpoint that keeps failing) does not hold the caller for hours.
IDLE_HORIZON = 1.0
DELIVERY_WORKERS = 8


def sign(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64 of the HMAC-SHA256 of the raw body, keyed with the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookSender(EnqueueMixin):
    """Turns store events into deliveries and delivers them. One per devstore process."""

    def __init__(self, store: DevStore, config: DevstoreConfig, clock: Callable[[], float] = time.time,
                 http: httpx.Client | None = None, *, rng: random.Random | None = None,
                 workers: int = DELIVERY_WORKERS):
        self._store = store
        self._config = config
        self._clock = clock
        self._timeout = httpx.Timeout(config.webhook_timeout, connect=CONNECT_TIMEOUT)
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=self._timeout, follow_redirects=False)
        self._rng = rng or random.Random()  # fault-injection dice; pass a seeded one for repeatable tests
        self._rng_lock = threading.Lock()
        self._workers = workers
        self._listening = False
        self._claimed: set[int] = set()      # delivery ids being attempted right now
        self._inflight: set[str] = set()     # shops a background worker is draining
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- delivering ----------------------------------------------------------------------------
    def deliver_due(self, now: float | None = None) -> int:
        """One synchronous pass over every row due at `now` (default: the clock); returns attempts made."""
        moment = self._clock() if now is None else now
        attempts = 0
        for shop in self._due_shops(moment):
            attempts += self._deliver_shop(shop, moment)
        return attempts

    def _due_shops(self, moment: float) -> list[str]:
        return [r[0] for r in self._store.conn().execute(
            "SELECT DISTINCT shop FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY shop", (moment,))]

    def _deliver_shop(self, shop: str, now: float | None, stop: threading.Event | None = None) -> int:
        """Attempt the shop's due rows in batches until none is due (or `stop` is set); returns attempts."""
        attempts = 0
        while stop is None or not stop.is_set():
            moment = self._clock() if now is None else now
            rows = self._claim(shop, moment)
            if not rows:
                return attempts
            try:
                for row in self._ordered(shop, rows):
                    self._attempt(row, now)
                    attempts += 1
            finally:
                with self._lock:
                    self._claimed.difference_update(row["id"] for row in rows)
        return attempts

    def _claim(self, shop: str, moment: float) -> list[sqlite3.Row]:
        with self._lock:  # rows another pass is attempting are skipped, so fetch enough to fill a batch
            limit = SHOP_BATCH + len(self._claimed)
        rows = self._store.conn().execute(
            "SELECT * FROM webhook_deliveries WHERE shop = ? AND status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY id LIMIT ?", (shop, moment, limit)).fetchall()
        with self._lock:
            mine = [row for row in rows if row["id"] not in self._claimed][:SHOP_BATCH]
            self._claimed.update(row["id"] for row in mine)
        return mine

    def _ordered(self, shop: str, rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
        """Id order, unless the shuffle fault asks for random order within windows of `window` rows."""
        fault = self._store.fault(shop, "shuffle_webhooks")
        if not fault:
            return rows
        window = max(int(fault.get("window", len(rows))), 1)
        shuffled: list[sqlite3.Row] = []
        for start in range(0, len(rows), window):
            chunk = rows[start:start + window]
            with self._rng_lock:
                self._rng.shuffle(chunk)
            shuffled.extend(chunk)
        return shuffled

    def _attempt(self, row: sqlite3.Row, now: float | None) -> None:
        app = self._store.app(row["api_key"])
        if app is None:
            self._record(row, ok=False, status=None, error="app is not registered", now=now, final=True)
            return
        body = bytes(row["body"])
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Shopify-Topic": row["topic"],
            "X-Shopify-Hmac-Sha256": sign(body, app["api_secret"]),
            "X-Shopify-Shop-Domain": row["shop"],
            "X-Shopify-API-Version": row["api_version"],
            "X-Shopify-Webhook-Id": row["webhook_id"],
            "X-Shopify-Event-Id": row["event_id"],
            "X-Shopify-Triggered-At": row["triggered_at"],
        }
        ok, status, error = self._post(row["uri"], body, headers)
        duplicate = self._store.fault(row["shop"], "duplicate_webhooks")
        if duplicate and self._roll(float(duplicate.get("rate", 1.0))):
            self._post(row["uri"], body, headers)  # the same delivery again: same body, same webhook id
        self._record(row, ok=ok, status=status, error=error, now=now)

    def _post(self, uri: str, body: bytes, headers: dict[str, str]) -> tuple[bool, int | None, str | None]:
        try:
            response = self._http.post(uri, content=body, headers=headers, timeout=self._timeout,
                                       follow_redirects=False)
        except httpx.TimeoutException as exc:
            return False, None, f"timeout: {exc.__class__.__name__}"
        except httpx.HTTPError as exc:
            return False, None, f"{exc.__class__.__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return True, response.status_code, None
        return False, response.status_code, f"HTTP {response.status_code}"

    def _record(self, row: sqlite3.Row, *, ok: bool, status: int | None, error: str | None, now: float | None,
                final: bool = False) -> None:
        moment = self._clock() if now is None else now
        attempts = row["attempts"] + 1
        with self._store.tx() as conn:
            if ok:
                conn.execute("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_status = ?, "
                             "last_error = NULL WHERE id = ?", (attempts, status, row["id"]))
                if row["subscription_id"] is not None:
                    conn.execute("UPDATE webhook_subscriptions SET consecutive_failures = 0 WHERE id = ?",
                                 (row["subscription_id"],))
                return
            exhausted = final or attempts >= self._config.webhook_max_attempts
            delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)] * self._config.time_scale
            conn.execute("UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, "
                         "next_attempt_at = ? WHERE id = ?",
                         ("failed" if exhausted else "pending", attempts, status, error, moment + delay, row["id"]))
            if row["subscription_id"] is not None:
                self._count_failure(conn, row["subscription_id"])

    def _count_failure(self, conn: sqlite3.Connection, subscription_id: int) -> None:
        conn.execute("UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1 "
                     "WHERE id = ?", (subscription_id,))
        found = conn.execute("SELECT consecutive_failures FROM webhook_subscriptions WHERE id = ?",
                             (subscription_id,)).fetchone()
        limit = self._config.webhook_failures_before_removal
        if found is not None and found[0] >= limit:
            conn.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (subscription_id,))
            conn.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = ? "
                         "WHERE subscription_id = ? AND status = 'pending'",
                         (f"subscription removed after {limit} consecutive failures", subscription_id))
            log.warning("webhook subscription %s removed after %s consecutive failures", subscription_id, limit)

    # -- background loop -----------------------------------------------------------------------
    def start(self) -> None:
        """Deliver due rows on a background thread until stop()."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="webhook-delivery")
        self._thread = threading.Thread(target=self._loop, name="webhook-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread; attempts under way finish (each is bounded by its timeout)."""
        thread, pool = self._thread, self._pool
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._thread = self._pool = None

    def close(self) -> None:
        """stop(), then close the HTTP client if this sender created it."""
        self.stop()
        if self._owns_http:
            self._http.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._schedule()
                pause = self._pause()
            except Exception:  # a transient SQLite error must not kill delivery for good
                log.exception("webhook delivery loop")
                pause = IDLE_POLL
            self._wake.wait(pause)

    def _schedule(self) -> None:
        assert self._pool is not None
        for shop in self._due_shops(self._clock()):
            with self._lock:
                if shop in self._inflight:
                    continue
                self._inflight.add(shop)
            self._pool.submit(self._drain, shop)

    def _drain(self, shop: str) -> None:
        try:
            self._deliver_shop(shop, None, self._stopping)
        except Exception:
            log.exception("delivering webhooks for %s", shop)
        finally:
            with self._lock:
                self._inflight.discard(shop)
            self._wake.set()  # rows may have become due while this shop was busy

    def _pause(self) -> float:
        """Seconds until the next pending row is due, capped so new rows are noticed promptly."""
        row = self._store.conn().execute(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'").fetchone()
        if row is None or row[0] is None:
            return IDLE_POLL
        return min(max(row[0] - self._clock(), 0.001), IDLE_POLL)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is being attempted and no pending delivery is due within IDLE_HORIZON;
        False if `timeout` seconds pass first (e.g. when the background thread is not running)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = bool(self._claimed or self._inflight)
            pending = self._store.conn().execute(
                "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? LIMIT 1",
                (self._clock() + IDLE_HORIZON,)).fetchone()
            if not busy and pending is None:
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.01)

    # -- control API ---------------------------------------------------------------------------
    def due(self, shop: str) -> int:
        """How many of the shop's deliveries wait to be attempted now (what a flush would send)."""
        return self._store.conn().execute(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE shop = ? AND status = 'pending' AND next_attempt_at <= ?",
            (shop, self._clock() + IDLE_HORIZON)).fetchone()[0]

    def deliveries(self, shop: str, topic: str | None = None, status: str | None = None,
                   limit: int = 100) -> list[dict]:
        """The shop's deliveries, newest first, JSON-ready (the body parsed as `payload`)."""
        query = ("SELECT id, subscription_id, api_key, topic, uri, api_version, webhook_id, event_id, "
                 "triggered_at, attempts, next_attempt_at, status, last_status, last_error, body "
                 "FROM webhook_deliveries WHERE shop = ?")
        params: list[Any] = [shop]
        for column, value in (("topic", topic), ("status", status)):
            if value:
                query += f" AND {column} = ?"
                params.append(value)
        query += " ORDER BY id DESC LIMIT ?"
        params.append(max(int(limit), 0))
        result = []
        for row in self._store.conn().execute(query, params):
            item = {key: row[key] for key in row.keys() if key != "body"}
            item["payload"] = json.loads(bytes(row["body"]))
            result.append(item)
        return result


def verify(body: bytes, header: str, secrets: Iterable[str]) -> bool:
    """Receiver-side check (tests, tools): does the header match the body under any of the secrets?"""
    return any(hmac.compare_digest(sign(body, secret), header) for secret in secrets if secret)
