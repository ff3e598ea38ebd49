"""Variants' unit costs in the mirror, against devstore over real HTTP: the backfill's variant export,
signed inventory_items/* and products/* webhooks delivered by devstore to the live app (late, lost,
forged, malformed), and reconciliation repairing what a lost delivery missed."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from io import StringIO

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from devstore import inventory, mutations
from segments.mirror import rest
from segments.mirror.costs import costs_upsert
from segments.mirror.models import BackfillStatus, Product, ShopSync, VariantCost
from segments.mirror.order_costs import order_costs_refresh
from segments.mirror.reconcile import shop_reconcile
from segments.mirror.records import CostRecord
from segments.shops.models import Shop
from shopseg.shopify.signatures import webhook_hmac
from tests.conftest import install_live, settle
from tests.segments.mirror.test_backfill import run_backfill, seeded_install
from tests.segments.mirror.test_order_costs import recomputed, stored
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process

LIVE = pytest.mark.django_db(transaction=True)
T0 = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)


def devstore_costs(devstore, domain: str) -> dict[int, tuple]:
    """item id -> (variant id, unit cost or None, updated_at), as devstore (Shopify) holds them."""
    rows = devstore.store.conn().execute(
        "SELECT id, variant_id, cost_cents, updated_at FROM inventory_items WHERE shop = ?", (domain,)).fetchall()
    return {item: (variant, None if cents is None else Decimal(cents) / 100,
                   dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))) for item, variant, cents, stamp in rows}


def mirror_costs(shop: Shop) -> dict[int, tuple]:
    rows = VariantCost.objects.filter(shop=shop).values_list("inventory_item_id", "variant_id", "unit_cost",
                                                             "updated_at")
    return {item: (variant, cost, updated) for item, variant, cost, updated in rows}


def a_variant(devstore, domain: str, *, priced: bool = True, skip: int = 0) -> tuple[int, int]:
    """(variant id, its inventory item's id) of a variant with a cost (or, `priced=False`, without one)."""
    return tuple(devstore.store.conn().execute(
        f"SELECT variant_id, id FROM inventory_items WHERE shop = ? AND cost_cents IS {'NOT ' if priced else ''}NULL "
        "ORDER BY id LIMIT 1 OFFSET ?", (domain, skip)).fetchone())


# -- backfill --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_backfill_brings_every_variants_cost_and_none_where_there_is_none(client, devstore, settings,
                                                                              django_capture_on_commit_callbacks):
    # Given a seeded shop, installed, whose history is being backfilled
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)

    # When the backfill runs to the end
    sync = run_backfill(devstore, shop)

    # Then every variant's cost is in the mirror, linked to its variant, with Shopify's time
    assert sync.backfill_status == BackfillStatus.DONE, sync.backfill_error
    expected = devstore_costs(devstore, shop.domain)
    assert mirror_costs(shop) == expected
    costs = [cost for _, cost, _ in expected.values()]
    assert None in costs and sum(cost is not None for cost in costs) > len(costs) / 2
    [stage] = [s for s in sync.stages if s["root"] == "productVariants"]
    assert stage["status"] == "loaded" and stage["objects"] == len(expected)
    out = StringIO()
    call_command("mirror_status", shop=shop.domain, stdout=out)
    assert json.loads(out.getvalue())[0]["variant_costs"] == {"variants": len(expected), "missing": costs.count(None)}
    # and every order's revenue and cost of goods follow the costs that came after the orders
    assert stored(shop) == recomputed(shop) and any(cost for _, cost, _, _ in stored(shop).values())
    # and reconciliation right after finds nothing to repair
    assert shop_reconcile(shop_id=shop.pk) == 0


# -- webhooks and reconciliation, with the app served live -----------------------------------------
@pytest.fixture
def live_shop(devstore, live_server, settings):
    """A seeded shop with the app installed at the live server, its history backfilled."""
    domain, _ = install_live(devstore, live_server, settings, customers=20, seed=5)
    settle(devstore, domain)
    yield Shop.objects.get(domain=domain)
    devstore.control("DELETE", "/faults")


def set_cost(devstore, shop: Shop, variant: int, cost: str | None) -> dict:
    """The merchant types a variant's cost in the admin (devstore's control API)."""
    return devstore.control("POST", f"/shops/{shop.domain}/variants/{variant}/cost", json={"cost": cost})


def row(shop: Shop, item: int) -> tuple | None:
    return mirror_costs(shop).get(item)


def events(shop: Shop, topic: str):
    return WebhookEvent.objects.filter(shop_domain=shop.domain, topic=topic).order_by("pk")


def last_delivery(devstore, shop: Shop, topic: str) -> int:
    return devstore.store.conn().execute("SELECT MAX(id) FROM webhook_deliveries WHERE shop = ? AND topic = ?",
                                         (shop.domain, topic)).fetchone()[0]


def redeliver(devstore, shop: Shop, delivery_id: int) -> None:
    """devstore sends an earlier delivery again, now: a retry arriving after later ones (its own webhook id)."""
    with devstore.store.tx() as conn:
        conn.execute(
            "INSERT INTO webhook_deliveries (subscription_id, shop, api_key, topic, uri, api_version, webhook_id, "
            "event_id, triggered_at, body, next_attempt_at, status) SELECT subscription_id, shop, api_key, topic, "
            "uri, api_version, ?, event_id, triggered_at, body, next_attempt_at, 'pending' "
            "FROM webhook_deliveries WHERE id = ?", (str(uuid.uuid4()), delivery_id))
    settle(devstore, shop.domain)


def post(url: str, secret: str, shop: Shop, topic: str, payload: dict) -> httpx.Response:
    """A delivery signed (or forged) by hand, sent to the live app as Shopify sends one."""
    body = json.dumps(payload).encode()
    return httpx.post(f"{url}/webhooks/shopify", content=body, timeout=30, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop.domain,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret)})


@LIVE
def test_a_cost_edited_in_the_admin_arrives_by_webhook(devstore, live_shop):
    # Given a shop whose costs came in with its history
    shop = live_shop
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)
    variant, item = a_variant(devstore, shop.domain)
    unpriced, unpriced_item = a_variant(devstore, shop.domain, priced=False)
    assert row(shop, unpriced_item)[:2] == (unpriced, None)

    # When the merchant types a new cost, and enters one for a variant that had none
    edited = set_cost(devstore, shop, variant, "7.25")
    set_cost(devstore, shop, unpriced, "0.40")
    settle(devstore, shop.domain)

    # Then the inventory_items/update deliveries were applied and the rows follow
    assert edited["changed"] and edited["inventory_item_id"] == f"gid://shopify/InventoryItem/{item}"
    assert row(shop, item)[:2] == (variant, Decimal("7.25"))
    assert row(shop, unpriced_item)[:2] == (unpriced, Decimal("0.40"))
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)
    assert [e.status for e in events(shop, "inventory_items/update")] == [EventStatus.PROCESSED] * 2
    assert stored(shop) == recomputed(shop)       # the orders holding them carry the new costs

    # And clearing the cost a little later clears it (an edit in the same second as the stored one
    # would be as old as it, and wait for reconciliation: test_a_read_of_shopifys_current_state_…)
    later = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=2)
    inventory.variant_cost_set(devstore.store, shop.domain, variant, None, now=later)
    settle(devstore, shop.domain)
    assert row(shop, item) == (variant, None, later)
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)


@LIVE
def test_an_older_or_equally_old_delivery_arriving_late_changes_nothing(devstore, live_shop, live_server, settings):
    # Given a cost edited twice, the second edit applied
    shop = live_shop
    variant, item = a_variant(devstore, shop.domain)
    set_cost(devstore, shop, variant, "5.00")
    settle(devstore, shop.domain)
    first = last_delivery(devstore, shop, "inventory_items/update")
    later = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=2)
    inventory.variant_cost_set(devstore.store, shop.domain, variant, 650, now=later)
    settle(devstore, shop.domain)
    second = last_delivery(devstore, shop, "inventory_items/update")
    assert row(shop, item) == (variant, Decimal("6.50"), later)

    # When Shopify's retry of the first edit arrives now
    redeliver(devstore, shop, first)

    # Then it is processed, and the newer cost stays
    assert [e.status for e in events(shop, "inventory_items/update")] == [EventStatus.PROCESSED] * 3
    assert row(shop, item) == (variant, Decimal("6.50"), later)

    # And a delivery exactly as old as the stored cost that says otherwise changes nothing either
    body = json.loads(bytes(devstore.store.conn().execute("SELECT body FROM webhook_deliveries WHERE id = ?",
                                                          (second,)).fetchone()[0]))
    assert (body["cost"], rest.timestamp(body["updated_at"])) == ("6.50", later)
    response = post(live_server.url, settings.SHOPIFY_API_SECRET, shop, "inventory_items/update",
                    {**body, "cost": "1.00"})
    assert response.status_code == 200
    settle(devstore, shop.domain)
    assert events(shop, "inventory_items/update").last().status == EventStatus.PROCESSED
    assert row(shop, item) == (variant, Decimal("6.50"), later)


@LIVE
def test_a_product_created_later_links_its_variants_and_a_deleted_one_takes_its_costs_along(devstore, live_shop):
    shop = live_shop
    before = mirror_costs(shop)

    # When the merchant adds a product with two variants, one priced and one not
    product = mutations.product_create(devstore.store, shop.domain, title="Copper kettle", product_type="Kitchen",
                                       vendor="Forge", variants=[
                                           {"title": "Small", "price_cents": 4000, "cost_cents": 1850},
                                           {"title": "Large", "price_cents": 6000}])
    settle(devstore, shop.domain)

    # Then products/create linked each variant to its item and inventory_items/create gave the costs
    added = {item: cost for item, cost in mirror_costs(shop).items() if item not in before}
    variants = [v for (v,) in devstore.store.conn().execute(
        "SELECT id FROM variants WHERE product_id = ? ORDER BY id", (product,))]
    assert sorted((v, c) for v, c, _ in added.values()) == [(variants[0], Decimal("18.50")), (variants[1], None)]
    assert all(updated is not None for _, _, updated in added.values())
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)
    assert Product.objects.filter(shop=shop, shopify_id=product).exists()

    # When it is deleted again
    mutations.product_delete(devstore.store, shop.domain, product)
    settle(devstore, shop.domain)

    # Then inventory_items/delete removed its items' rows, and only those
    assert mirror_costs(shop) == before == devstore_costs(devstore, shop.domain)
    assert [e.status for e in events(shop, "inventory_items/delete")] == [EventStatus.PROCESSED] * 2


@LIVE
def test_reconciliation_repairs_a_cost_and_a_product_whose_webhooks_were_lost(devstore, live_shop):
    shop = live_shop
    variant, item = a_variant(devstore, shop.domain, skip=3)
    held = row(shop, item)

    # Given deliveries lost on the way: a cost edit, and a new product with its item
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "drop_webhooks", "params": {"rate": 1.0}})
    set_cost(devstore, shop, variant, "3.10")
    product = mutations.product_create(devstore.store, shop.domain, title="Tin", product_type="Kitchen",
                                       vendor="Forge", variants=[{"title": "One", "price_cents": 900,
                                                                  "cost_cents": 300}])
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "drop_webhooks", "params": None})
    settle(devstore, shop.domain)
    assert row(shop, item) == held and mirror_costs(shop) != devstore_costs(devstore, shop.domain)
    assert not events(shop, "inventory_items/update").exists()

    # When reconciliation runs
    repaired = shop_reconcile(shop_id=shop.pk)

    # Then the cost, the new item (with its variant) and the product are repaired; a second run finds nothing
    assert repaired == 3
    assert row(shop, item)[:2] == (variant, Decimal("3.10"))
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)
    assert Product.objects.filter(shop=shop, shopify_id=product).exists()
    assert shop_reconcile(shop_id=shop.pk) == 0


@LIVE
def test_a_shop_backfilled_before_costs_were_kept_gets_every_cost_on_its_next_reconciliation(devstore, live_shop):
    # Given a shop whose history came in before costs were kept: no costs, and a watermark after every edit
    shop = live_shop
    VariantCost.objects.filter(shop=shop).delete()
    ShopSync.objects.filter(shop=shop).update(reconciled_until=timezone.now() + dt.timedelta(minutes=10))
    order_costs_refresh(shop=shop)
    assert not any(cost for _, cost, _, _ in stored(shop).values())

    # When reconciliation runs, every item is read once, whatever the watermark
    assert shop_reconcile(shop_id=shop.pk) == len(devstore_costs(devstore, shop.domain))

    # Then the costs are Shopify's and the orders carry them; the next run goes back to changes only
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)
    assert stored(shop) == recomputed(shop) and any(cost for _, cost, _, _ in stored(shop).values())
    assert shop_reconcile(shop_id=shop.pk) == 0


@LIVE
def test_a_forged_or_malformed_cost_delivery_is_refused(devstore, live_shop, live_server, settings):
    shop = live_shop
    variant, item = a_variant(devstore, shop.domain)
    held = row(shop, item)
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
    good = {"id": item, "cost": "0.01", "updated_at": future, "sku": "x", "tracked": True}

    # A body signed with another secret is turned away before anything is stored
    forged = post(live_server.url, "not-the-app-secret", shop, "inventory_items/update", good)
    assert forged.status_code == 401
    assert not events(shop, "inventory_items/update").exists()

    # A signed body without a usable id or cost is recorded, fails with the reason, and changes nothing
    for payload in ({**good, "id": None}, {**good, "cost": "twelve"}, {**good, "cost": "-1.00"},
                    {**good, "cost": True}, {**good, "cost": "1e15"}):
        assert post(live_server.url, settings.SHOPIFY_API_SECRET, shop, "inventory_items/update",
                    payload).status_code == 200
    assert post(live_server.url, settings.SHOPIFY_API_SECRET, shop, "inventory_items/delete",
                {"id": "gid://shopify/Product/"}).status_code == 200
    refused = WebhookEvent.objects.filter(shop_domain=shop.domain, topic__startswith="inventory_items/")
    assert [(e.status, e.last_error.split(":")[0]) for e in refused] == [(EventStatus.PENDING, "PayloadError")] * 6
    assert all(e.attempts >= 1 for e in refused)
    assert row(shop, item) == held
    assert mirror_costs(shop) == devstore_costs(devstore, shop.domain)


# -- the writer's rules, deliveries applied without HTTP -------------------------------------------
def deliver(shop: Shop, topic: str, payload: dict) -> WebhookEvent:
    event = WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop.domain, topic=topic,
                                        payload=payload)
    webhook_event_process(event_pk=event.pk)
    event.refresh_from_db()
    return event


@pytest.mark.django_db
@pytest.mark.parametrize("product_first", [True, False])
def test_an_item_and_its_product_may_arrive_in_either_order(product_first):
    shop = Shop.objects.create(domain="costs.myshopify.com")
    product = ("products/create", {"id": 7, "title": "Kettle", "updated_at": T0.isoformat(), "variants": [
        {"id": 70, "inventory_item_id": 700}, {"id": 71, "inventory_item_id": None}, {"id": None}]})
    item = ("inventory_items/create", {"id": 700, "cost": "4.20", "updated_at": T0.isoformat()})

    for topic, payload in (product, item) if product_first else (item, product):
        assert deliver(shop, topic, payload).status == EventStatus.PROCESSED

    assert mirror_costs(shop) == {700: (70, Decimal("4.20"), T0)}
    # a products/update that names the same link again writes nothing
    assert deliver(shop, "products/update", product[1]).status == EventStatus.PROCESSED
    assert mirror_costs(shop) == {700: (70, Decimal("4.20"), T0)}


@pytest.mark.django_db
def test_a_read_of_shopifys_current_state_settles_a_same_second_tie_that_a_webhook_cannot():
    shop = Shop.objects.create(domain="ties.myshopify.com")

    def upsert(cost: str, at: dt.datetime = T0, *, variant_id: int | None = None, current: bool = False) -> int:
        return costs_upsert(shop=shop, records=[CostRecord(700, at, Decimal(cost), variant_id)], current=current)

    assert upsert("4.20") == 1
    assert upsert("5.00") == 0                      # a webhook as old as the stored cost: nothing
    assert upsert("5.00", current=True) == 1        # reconciliation read 5.00 at that same time: it wins
    assert upsert("5.00", current=True) == 0        # read again: nothing to repair
    # an older read that names the variant fills in the link and leaves the newer cost alone
    assert upsert("9.99", T0 - dt.timedelta(seconds=1), variant_id=70, current=True) == 1
    assert mirror_costs(shop) == {700: (70, Decimal("5.00"), T0)}
