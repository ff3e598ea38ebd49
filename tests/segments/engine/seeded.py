"""A devstore shop seeded with a persona-labelled history, installed and backfilled through the real
app, inside a transaction that is rolled back at the end; devstore's own truth about its customers;
and precision and recall of a segment against it. For the template tests."""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import transaction
from django.test import Client, TestCase, override_settings

from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import BackfillStatus, Customer
from segments.shops.models import Shop
from tests.conftest import Devstore, run_install
from tests.segments.mirror.test_backfill import run_backfill


@contextlib.contextmanager
def seeded_shop(devstore_server, django_db_blocker, *, customers: int, seed: int,
                now: dt.datetime) -> Iterator[tuple[Shop, Devstore]]:
    """Seed a devstore shop (its history ends at the start of `now`'s UTC day), install the app and
    backfill it, rebuild the metrics at `now`; everything the app wrote is rolled back afterwards."""
    store = devstore_server.app.store
    with (django_db_blocker.unblock(),
          override_settings(SHOPIFY_SHOP_BASE_URL=devstore_server.url + "/shops/{shop}",
                            SHOPSEG_APP_URL="http://testserver"),
          httpx.Client(timeout=30) as http):
        store.app_register(api_key=settings.SHOPIFY_API_KEY, api_secret=settings.SHOPIFY_API_SECRET,
                           app_url="http://testserver/")
        devstore = Devstore(server=devstore_server, http=http)
        with transaction.atomic():
            domain = devstore.create_shop()
            devstore.control("POST", f"/shops/{domain}/seed",
                             json={"customers": customers, "seed": seed, "now": now.isoformat()})
            with TestCase.captureOnCommitCallbacks(execute=True):
                assert run_install(Client(), devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
            shop = Shop.objects.get(domain=domain)
            sync = run_backfill(devstore, shop)
            assert sync.backfill_status == BackfillStatus.DONE, sync.backfill_error
            customer_metrics_rebuild(shop=shop, now=now)
            yield shop, devstore
            transaction.set_rollback(True)


@dataclass
class Truth:
    """What devstore knows of each mirrored customer (keyed by mirror pk), from its own rows."""

    persona: dict[int, str]
    orders: dict[int, list[tuple[dt.datetime, int]]]   # (created_at, net cents), oldest first
    types: dict[int, collections.Counter]               # product types of the line items bought
    last_abandoned_cents: dict[int, int]                # total of the newest abandoned checkout
    buyers: int

    def of(self, *personas: str) -> set[int]:
        return {pk for pk, p in self.persona.items() if p in personas}

    def favourite_type(self, pk: int) -> str | None:
        counts = self.types.get(pk)
        return counts.most_common(1)[0][0] if counts else None


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def truth_of(devstore: Devstore, shop: Shop) -> Truth:
    conn = devstore.store.conn()
    pk_of = dict(Customer.objects.filter(shop=shop).values_list("shopify_id", "pk"))
    persona, by_email = {}, {}
    for row in conn.execute("SELECT id, email, persona FROM customers WHERE shop = ?", (shop.domain,)):
        persona[pk_of[row["id"]]] = row["persona"]
        if row["email"]:
            by_email[row["email"].lower()] = pk_of[row["id"]]

    def owner(customer_id, email) -> int | None:
        # The mirror links a guest's order to the customer with the same email, as Shopify does.
        return pk_of.get(customer_id) if customer_id else by_email.get((email or "").lower())

    orders: dict[int, list] = collections.defaultdict(list)
    owner_of_order: dict[int, int] = {}
    for row in conn.execute("SELECT id, customer_id, email, created_at, total_cents, refunded_cents FROM orders "
                            "WHERE shop = ? AND test = 0 AND cancelled_at IS NULL", (shop.domain,)):
        pk = owner(row["customer_id"], row["email"])
        if pk is not None:
            orders[pk].append((_time(row["created_at"]), row["total_cents"] - row["refunded_cents"]))
            owner_of_order[row["id"]] = pk
    for bought in orders.values():
        bought.sort()
    types: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for row in conn.execute("SELECT order_id, product_type FROM line_items WHERE shop = ?", (shop.domain,)):
        if row["order_id"] in owner_of_order:
            types[owner_of_order[row["order_id"]]][row["product_type"]] += 1
    last_abandoned: dict[int, tuple[str, int]] = {}
    for row in conn.execute("SELECT customer_id, email, created_at, total_cents FROM checkouts "
                            "WHERE shop = ? AND completed_at IS NULL ORDER BY created_at", (shop.domain,)):
        pk = owner(row["customer_id"], row["email"])
        if pk is not None:
            last_abandoned[pk] = row["total_cents"]
    return Truth(persona=persona, orders=dict(orders), types=dict(types), last_abandoned_cents=last_abandoned,
                 buyers=len(orders))


@dataclass
class Measured:
    selected: int
    precision: float
    recall: float
    wanted: int
    who: list[tuple[str, int]]    # personas of the selected customers, most first

    def __str__(self) -> str:
        return (f"precision {self.precision:.3f} recall {self.recall:.3f} "
                f"({self.selected} selected, {self.wanted} wanted): {self.who}")


def measure(selected: set[int], right: set[int], wanted: set[int], truth: Truth) -> Measured:
    """Precision: share of the selected that are right; recall: share of the wanted selected."""
    who = collections.Counter(truth.persona[pk] for pk in selected).most_common()
    return Measured(selected=len(selected), precision=len(selected & right) / max(1, len(selected)),
                    recall=len(selected & wanted) / max(1, len(wanted)), wanted=len(wanted), who=who)
