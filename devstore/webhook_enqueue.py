"""The enqueueing half of the webhook sender: a store event becomes one `webhook_deliveries` row per
app that should hear of it. Targets are the subscriptions to the topic whose app is installed and
was granted the topic's scope (for `app/uninstalled`, only the app just removed), or, for the
compliance topics, every app installed now or uninstalled less than 30 days ago, at its compliance
URI. The payload is built once per event, from the rows as they are right after the write, and the
drop-webhooks fault is rolled here. `WebhookSender` mixes in `EnqueueMixin`, which uses the sender's
store, clock, random stream and wake-up event.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid

from . import payloads, topics
from .state import Event, iso

log = logging.getLogger("devstore.webhooks")

DEFAULT_API_VERSION = "2026-10"  # for compliance deliveries of an app that has no subscription left
# Compliance requests still reach an app for this long after it was uninstalled (shop/redact comes 48 h later).
COMPLIANCE_AFTER_UNINSTALL = dt.timedelta(days=30)


def triggered_at(moment: float) -> str:
    """X-Shopify-Triggered-At, in the form Shopify's header reference shows (`...T16:15:47.000000Z`)."""
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _scopes(text: str) -> set[str]:
    return {s.strip() for s in text.replace(" ", ",").split(",") if s.strip()}


class EnqueueMixin:
    """Store events in, delivery rows out (see the module docstring)."""

    def listen(self) -> None:
        """Subscribe to the store's events (once)."""
        if not self._listening:
            self._store.subscribe(self._on_event)
            self._listening = True

    def _on_event(self, event: Event) -> None:
        # Listeners run in the writer's thread after its commit; a failure here must not look like
        # a failed write to the caller, so it is logged instead of raised.
        try:
            self.enqueue(event)
        except Exception:
            log.exception("could not enqueue %s for %s", event.topic, event.shop)

    def enqueue(self, event: Event) -> int:
        """Write the deliveries for one event; returns how many rows were written (dropped ones included)."""
        extra = event.extra or {}
        if event.topic in topics.COMPLIANCE_TOPICS:
            targets = self._compliance_targets(event.shop)
        elif event.topic in topics.TOPICS:
            targets = self._subscribed_targets(event, extra)
        else:
            log.warning("no webhook topic %s; event ignored", event.topic)
            return 0
        written = 0
        if targets:
            payload = payloads.build(self._store, event)
            if payload is None:
                log.warning("no payload for %s %s in %s; nothing delivered", event.topic, event.id, event.shop)
            else:
                written = self._insert(event, extra, targets, payloads.encode(payload))
        if event.topic == "app/uninstalled" and extra.get("api_key"):
            # Shopify drops the API-created subscriptions of an uninstalled app (after sending this one).
            with self._store.tx() as conn:
                conn.execute("DELETE FROM webhook_subscriptions WHERE shop = ? AND api_key = ?",
                             (event.shop, extra["api_key"]))
        if written:
            self._wake.set()
        return written

    def _subscribed_targets(self, event: Event, extra: dict) -> list[dict]:
        """Subscriptions to the topic whose app is installed (or, for app/uninstalled, just removed)
        and was granted the topic's scope."""
        needed = topics.required_scope(event.topic)
        rows = self._store.conn().execute(
            "SELECT s.id, s.api_key, s.uri, s.api_version, i.scopes, i.uninstalled_at "
            "FROM webhook_subscriptions s JOIN installations i ON i.shop = s.shop AND i.api_key = s.api_key "
            "WHERE s.shop = ? AND s.topic = ? ORDER BY s.id",
            (event.shop, topics.TOPICS[event.topic])).fetchall()
        targets = []
        for row in rows:
            if event.topic == "app/uninstalled":
                # Only the app that was removed hears about it, even though it is no longer installed.
                removed = extra.get("api_key")
                if (removed is not None and row["api_key"] != removed) or \
                        (removed is None and row["uninstalled_at"] is None):
                    continue
            elif row["uninstalled_at"] is not None:
                continue
            if not topics.scope_granted(_scopes(row["scopes"]), needed):
                continue
            targets.append({"subscription_id": row["id"], "api_key": row["api_key"], "uri": row["uri"],
                            "api_version": row["api_version"]})
        return targets

    def _compliance_targets(self, shop: str) -> list[dict]:
        """Every app installed on the shop, or uninstalled recently, at its compliance URI."""
        now = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc)
        conn = self._store.conn()
        rows = conn.execute(
            "SELECT i.api_key, a.app_url FROM installations i JOIN apps a ON a.api_key = i.api_key "
            "WHERE i.shop = ? AND (i.uninstalled_at IS NULL OR i.uninstalled_at >= ?) ORDER BY i.api_key",
            (shop, iso(now - COMPLIANCE_AFTER_UNINSTALL))).fetchall()
        targets = []
        for row in rows:
            version = conn.execute(
                "SELECT api_version FROM webhook_subscriptions WHERE shop = ? AND api_key = ? "
                "ORDER BY id DESC LIMIT 1", (shop, row["api_key"])).fetchone()
            targets.append({"subscription_id": None, "api_key": row["api_key"],
                            "uri": row["app_url"].rstrip("/") + topics.COMPLIANCE_PATH,
                            "api_version": version["api_version"] if version else DEFAULT_API_VERSION})
        return targets

    def _insert(self, event: Event, extra: dict, targets: list[dict], body: bytes) -> int:
        now = self._clock()
        event_id = str(extra.get("event_id") or uuid.uuid4())
        drop = self._store.fault(event.shop, "drop_webhooks")
        rows = []
        for target in targets:
            dropped = bool(drop) and self._roll(float(drop.get("rate", 1.0)))
            rows.append((target["subscription_id"], event.shop, target["api_key"], event.topic, target["uri"],
                         target["api_version"], str(uuid.uuid4()), event_id, triggered_at(now), body, now,
                         "dropped" if dropped else "pending", "dropped by fault injection" if dropped else None))
        with self._store.tx() as conn:
            conn.executemany(
                "INSERT INTO webhook_deliveries (subscription_id, shop, api_key, topic, uri, api_version, webhook_id, "
                "event_id, triggered_at, body, next_attempt_at, status, last_error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def _roll(self, rate: float) -> bool:
        with self._rng_lock:
            return self._rng.random() < rate
