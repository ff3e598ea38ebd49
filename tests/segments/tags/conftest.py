"""Fixtures for tag sync: an installed devstore shop whose customers exist in both devstore and the
mirror, segments over them, and helpers that read tags as Shopify (devstore) holds them over HTTP."""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from devstore.state import Event, iso, utcnow
from segments.membership.models import Segment, SegmentVersion, TagChange
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer
from segments.mirror.records import CustomerRecord
from segments.mirror.writer import customers_upsert
from segments.shops.models import Shop
from segments.shops.throttle import ShopThrottle
from tests.segments.engine.test_metrics_table import Mirror

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
ONE_ORDER = {"version": 1, "include": {"metric": "orders_count", "op": "eq", "value": 1}}
REPEAT = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 2}}


@dataclass
class TagStore:
    """One installed shop: customers in devstore and in the mirror, with the same Shopify ids."""

    devstore: object
    shop: Shop
    mirror: Mirror
    sids: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    # -- setting up --------------------------------------------------------------------------------
    def customers(self, count: int, tags: list[str] | None = None) -> list[int]:
        """`count` customers with `tags` (the merchant's) in devstore and the mirror; their Shopify ids."""
        store = self.devstore.store
        ids = list(store.next_ids("Customer", count))
        stamp = iso(utcnow())
        with store.tx() as conn:
            conn.executemany(
                "INSERT INTO customers (id, shop, first_name, last_name, email, tags, created_at, updated_at) "
                "VALUES (?, ?, 'Test', 'Customer', ?, ?, ?, ?)",
                [(sid, self.shop.domain, f"c{sid}@example.com", json.dumps(tags or []), stamp, stamp)
                 for sid in ids])
        customers_upsert(shop=self.shop, records=[
            CustomerRecord(sid, updated_at=timezone.now() - dt.timedelta(days=400), email=f"c{sid}@example.com",
                           created_at=timezone.now() - dt.timedelta(days=400), tags=list(tags or []),
                           first_name="Test", last_name="Customer", state="enabled")
            for sid in ids])
        self.sids += ids
        return ids

    def order(self, sid: int, days_ago: float = 10) -> None:
        self.mirror.order(sid, days_ago)

    def segment(self, handle: str, rules: dict, **fields) -> Segment:
        fields.setdefault("name", handle.title())
        segment = Segment.objects.create(shop=self.shop, handle=handle, **fields)
        SegmentVersion.objects.create(segment=segment, number=1, rules=rules)
        return segment

    def recompute(self, customer_ids=None) -> None:
        """Metrics and memberships as the engine computes them; the outbox fills."""
        customer_metrics_rebuild(shop=self.shop)
        segments_recompute(shop=self.shop, customer_ids=customer_ids)

    def pk(self, sid: int) -> int:
        return Customer.objects.get(shop=self.shop, shopify_id=sid).pk

    # -- reading Shopify ---------------------------------------------------------------------------
    def tags(self, sid: int) -> list[str]:
        """The customer's tags as devstore holds them, over its control API."""
        return self.devstore.control("GET", f"/shops/{self.shop.domain}/customers/{sid}/tags")["tags"]

    def hand_edit(self, sid: int, *, add=(), remove=()) -> None:
        """A staff member edits tags in the Shopify admin."""
        self.devstore.control("POST", f"/shops/{self.shop.domain}/customers/{sid}/tags",
                              json={"add": list(add), "remove": list(remove)})

    def tag_events(self, topic: str, sid: int | None = None) -> list[Event]:
        """Events devstore fired for this shop since the fixture began (each becomes webhooks)."""
        return [e for e in self.events if e.shop == self.shop.domain and e.topic == topic
                and (sid is None or e.id == sid)]

    def deliveries_settle(self, timeout: float = 60.0) -> None:
        """Wait until devstore has attempted every delivery for this shop (the app under live_server
        has processed each one it accepted before answering)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.devstore.control("GET", f"/shops/{self.shop.domain}/webhooks",
                                            params={"status": "pending", "limit": 1})["deliveries"]
            if not pending:
                return
            time.sleep(0.05)
        raise AssertionError(f"deliveries for {self.shop.domain} still pending after {timeout}s")

    def pending(self) -> int:
        return TagChange.objects.filter(shop=self.shop, processed_at__isnull=True).count()


@pytest.fixture
def tagstore(installed_shop, devstore, settings) -> TagStore:
    settings.REDIS_URL = ""
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 0          # the bulk path has its own tests
    ShopThrottle(installed_shop.pk).reset()
    # The app here is Django's test client, which devstore cannot reach: deliveries would only fail
    # (slowly, for every later test); events are observed through a listener instead.
    devstore.control("POST", "/faults", json={"shop": installed_shop.domain, "kind": "drop_webhooks",
                                              "params": {"rate": 1.0}})
    tagstore = TagStore(devstore=devstore, shop=installed_shop, mirror=Mirror(installed_shop))
    listeners = devstore.store._listeners      # devstore has no unsubscribe; tests remove their own
    listeners.append(tagstore.events.append)
    yield tagstore
    listeners.remove(tagstore.events.append)
    devstore.control("POST", "/faults", json={"shop": installed_shop.domain, "kind": "drop_webhooks",
                                              "params": None})
