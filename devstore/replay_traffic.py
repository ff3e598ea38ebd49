"""A replayed day's shoppers: who buys on a simulated day (with a planted playbook effect on one
segment's treated members), and devstore's control API, which places those orders so that they
reach the app the way Shopify's would (orders/create and orders/paid webhooks).

Only for devstore shops (the demo and tests): nothing here talks to a real Shopify.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from zoneinfo import ZoneInfo

import httpx
from django.conf import settings

from segments.membership.models import Membership, Segment
from segments.mirror.models import Customer, LineItem, Order
from segments.shops.models import Shop
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_drain

# Daily chances to order. A planted segment's held-out members buy at SEGMENT_RATE, its treated
# members at SEGMENT_RATE x (1 + effect); everyone else at the shop's background pace, lower for
# customers who never ordered (their first order moves them between segments, which migration shows).
SEGMENT_RATE = 0.03
REPEAT_RATE = 0.004
FIRST_ORDER_RATE = 0.0015
OPEN_HOURS = (7, 23)        # shop-local hours orders are placed in
DEVICES = (("mobile", 55), ("desktop", 40), ("pos", 5))
INGEST_TIMEOUT = 120.0      # seconds a day's orders may take to reach the mirror


class ReplayTrafficError(RuntimeError):
    """devstore refused the orders, or they did not reach the mirror in time."""


@dataclass(frozen=True)
class Shopper:
    customer_id: int        # the mirror's id
    shopify_id: int
    has_ordered: bool


def devstore_control_url() -> str:
    """devstore's control API, next to the shops the app is configured to call."""
    base = settings.SHOPIFY_SHOP_BASE_URL
    if "/shops/{shop}" not in base:
        raise ReplayTrafficError("SHOPIFY_SHOP_BASE_URL does not point at devstore (…/shops/{shop}); a history "
                                 "replay only runs against devstore")
    return base.split("/shops/{shop}")[0] + "/_control"


class DevstoreOrders:
    """Places orders in one devstore shop and waits until the app has them."""

    def __init__(self, *, shop: Shop, control_url: str | None = None, timeout: float = 120.0):
        self._shop = shop
        self._http = httpx.Client(base_url=control_url or devstore_control_url(), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def place(self, orders: Sequence[dict]) -> list[int]:
        if not orders:
            return []
        response = self._http.post(f"/shops/{self._shop.domain}/orders", json={"orders": list(orders)})
        if response.status_code != 200:
            raise ReplayTrafficError(f"devstore refused the orders ({response.status_code}): {response.text[:300]}")
        return response.json()["orders"]

    def ingest(self, order_ids: Sequence[int]) -> None:
        """Until every order is in the mirror: devstore delivers its webhooks to the app, and this
        process helps drain them (a worker, when there is one, drains alongside: SKIP LOCKED).

        It watches devstore's count of due deliveries rather than asking for a flush: a flush wakes
        devstore's sender every 10 ms, and that polling slowed the deliveries it waited for."""
        deadline = time.monotonic() + INGEST_TIMEOUT
        wanted = set(order_ids)
        while True:
            if not self._due():     # every delivery answered, so recorded by the app: drained now, or pending
                webhook_events_drain()
                pending = WebhookEvent.objects.filter(shop_domain=self._shop.domain,
                                                      status=EventStatus.PENDING).exists()
                if not pending and self._shop_orders(wanted) == len(wanted):
                    return
            if time.monotonic() > deadline:
                missing = len(wanted) - self._shop_orders(wanted)
                raise ReplayTrafficError(f"{missing} of {len(wanted)} orders did not reach the mirror "
                                         f"within {INGEST_TIMEOUT:.0f}s: are devstore's webhooks reaching the app?")
            time.sleep(0.1)     # each poll costs devstore and the app's delivery threads time

    def _due(self) -> int:
        """devstore's count of the shop's deliveries not yet answered (due now or within a second)."""
        response = self._http.get(f"/shops/{self._shop.domain}/webhooks", params={"limit": 1})
        response.raise_for_status()
        return response.json()["due"]

    def _shop_orders(self, ids: set[int]) -> int:
        return Order.objects.filter(shop=self._shop, shopify_id__in=list(ids)).count()


def shoppers(*, shop: Shop) -> list[Shopper]:
    """Every live customer, in a fixed order (so a seed draws the same things)."""
    rows = (Customer.objects.filter(shop=shop, deleted_at__isnull=True).order_by("shopify_id")
            .values_list("pk", "shopify_id", "metrics__orders_count"))
    return [Shopper(pk, sid, bool(count)) for pk, sid, count in rows]


def shop_variants(*, shop: Shop, limit: int = 200) -> list[int]:
    """Variants the shop has sold (from the mirror's line items): what replayed shoppers buy."""
    ids = (LineItem.objects.filter(shop=shop, variant_id__isnull=False, variant_id__gt=0)
           .values_list("variant_id", flat=True).distinct()[:limit])
    variants = sorted(set(ids))
    if not variants:
        raise ReplayTrafficError("the shop has sold nothing yet, so there is nothing to buy")
    return variants


def day_orders(*, shop: Shop, day: dt.date, people: Sequence[Shopper], segment: Segment, effect: float,
               variants: Sequence[int], rng: Random) -> tuple[list[dict], dict[str, int]]:
    """One shop-local day's orders. Membership is read as it stands (the end of the previous day),
    so the effect follows the segment's treated members as they enter and leave."""
    members = dict(Membership.objects.filter(segment=segment).values_list("customer_id", "holdout"))
    zone = ZoneInfo(shop.iana_timezone or "UTC")
    opens = dt.datetime.combine(day, dt.time(OPEN_HOURS[0]), tzinfo=zone)
    span = (OPEN_HOURS[1] - OPEN_HOURS[0]) * 3600
    devices, weights = zip(*DEVICES)
    orders, counts = [], {"treated": 0, "holdout": 0, "others": 0}
    for person in people:
        holdout = members.get(person.customer_id)
        if holdout is None:
            rate, group = (REPEAT_RATE if person.has_ordered else FIRST_ORDER_RATE), "others"
        elif holdout:
            rate, group = SEGMENT_RATE, "holdout"
        else:
            rate, group = SEGMENT_RATE * (1 + effect), "treated"
        if rng.random() >= rate:
            continue
        at = opens + dt.timedelta(seconds=rng.randrange(span))
        lines = [{"variant_id": v, "quantity": rng.choice((1, 1, 1, 2))}
                 for v in rng.sample(list(variants), rng.choice((1, 1, 2, 3)))]
        device = rng.choices(devices, weights=weights)[0]
        orders.append({"customer_id": person.shopify_id, "line_items": lines, "device": device,
                       "source_name": "pos" if device == "pos" else "web",
                       "created_at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        counts[group] += 1
    return orders, counts
