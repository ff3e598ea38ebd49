"""shop/update and app/scopes_update: the shop's time zone, currency and plan, and the scopes it
granted, follow Shopify's deliveries in the order things happened; and the topics the app
subscribes to are exactly the ones it handles."""
import datetime as dt
import json
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devstore import topics as devstore_topics
from segments.shops.calendar import shop_today
from segments.shops.models import Shop
from segments.shops.subscriptions import WEBHOOK_TOPICS
from segments.shops.tokens import shop_tokens_store
from shopseg.shopify.oauth import TokenSet
from tests.segments.mirror.test_rest import sample
from webhooks.handlers import HANDLERS, TOPICS
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)
GRANTED = T0 - dt.timedelta(days=1)
ROOT = Path(__file__).resolve().parents[2]


def when(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def shop():
    return Shop.objects.create(domain="topics.myshopify.com", iana_timezone="America/New_York", currency="USD",
                               plan_name="Basic", scopes="read_customers,read_orders", granted_at=GRANTED)


def deliver(shop, topic, payload, triggered_at: dt.datetime | None) -> WebhookEvent:
    event = WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop.domain, topic=topic,
                                        payload=payload, triggered_at=triggered_at)
    webhook_event_process(event_pk=event.pk)
    event.refresh_from_db()
    return event


def shop_body(**changes) -> dict:
    """Shopify's Shop resource (the sample app/uninstalled shows; shop/update sends the same)."""
    return {**sample("app/uninstalled"), **changes}


def details(shop) -> tuple:
    shop.refresh_from_db()
    return shop.iana_timezone, shop.currency, shop.plan_name, shop.shopify_plus


# -- shop/update ---------------------------------------------------------------------------------
def test_shop_update_rereads_time_zone_currency_and_plan(shop):
    event = deliver(shop, "shop/update", shop_body(iana_timezone="Europe/Berlin", currency="EUR"), when(10))
    assert (event.status, event.last_error) == (EventStatus.PROCESSED, "")
    # the sample's plan: "Shopify Plus", plan_name "enterprise"
    assert details(shop) == ("Europe/Berlin", "EUR", "Shopify Plus", True)
    # every day boundary follows: 23:30 UTC on the 20th is already the 21st in Berlin
    assert shop_today(shop, now=dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.timezone.utc)) == dt.date(2026, 11, 21)


def test_an_older_shop_update_delivered_late_changes_nothing(shop):
    deliver(shop, "shop/update", shop_body(iana_timezone="Europe/Berlin", currency="EUR"), when(10))
    late = deliver(shop, "shop/update", shop_body(iana_timezone="Asia/Tokyo", currency="JPY",
                                                 plan_display_name="Basic", plan_name="basic"), when(5))
    assert late.status == EventStatus.PROCESSED
    assert details(shop) == ("Europe/Berlin", "EUR", "Shopify Plus", True)
    deliver(shop, "shop/update", shop_body(iana_timezone="Asia/Tokyo", currency="JPY", plan_display_name="Basic",
                                           plan_name="basic"), when(20))
    assert details(shop) == ("Asia/Tokyo", "JPY", "Basic", False)


def test_a_shop_update_from_before_the_latest_grant_changes_nothing(shop):
    """After a grant the app reads the shop's details itself (install)."""
    deliver(shop, "shop/update", shop_body(iana_timezone="Europe/Berlin"), GRANTED - dt.timedelta(minutes=1))
    assert details(shop)[0] == "America/New_York"


def test_what_a_shop_update_does_not_say_is_kept(shop):
    # the sample's iana_timezone is null; an unknown zone or currency is not taken either
    deliver(shop, "shop/update", shop_body(currency="CAD"), when(10))
    assert details(shop)[:2] == ("America/New_York", "CAD")
    deliver(shop, "shop/update", shop_body(iana_timezone="Mars/Olympus_Mons", currency="dollars"), when(20))
    assert details(shop)[:2] == ("America/New_York", "CAD")
    ZoneInfo(details(shop)[0])


def test_shop_update_from_devstore(shop, tmp_path):
    from devstore import mutations, payloads
    from devstore.state import DevStore

    store = DevStore(tmp_path / "devstore.db")
    store.shop_create(shop.domain, plan="shopify_plus")
    sent = []
    store.subscribe(lambda event: sent.append((event.topic, payloads.build(store, event))))
    mutations.shop_update(store, shop.domain, iana_timezone="Australia/Sydney", currency="AUD")
    store.close()
    [(topic, body)] = sent
    assert topic == "shop/update"
    deliver(shop, topic, body, when(10))
    assert details(shop) == ("Australia/Sydney", "AUD", "Shopify Plus", True)


@pytest.mark.parametrize("zone,recomputed", [("Europe/Berlin", True), ("America/New_York", False)])
def test_a_new_time_zone_recomputes_the_shops_metrics_and_segments_at_once(shop, zone, recomputed,
                                                                           django_capture_on_commit_callbacks):
    """Windows were cut at the old zone's midnights: a changed zone rebuilds the metrics and
    recomputes every segment (here an order no refresh had counted yet shows), the same zone nothing."""
    from segments.membership.definitions import segment_create
    from segments.membership.models import MembershipEvent

    segment = segment_create(shop=shop, name="Buyers", handle="buyers", rules={
        "version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}})
    order = json.loads((ROOT / "bench" / "order_sample.json").read_text())
    deliver(shop, "orders/create", order, when(5))      # its customer is dirty; no refresh runs here
    with django_capture_on_commit_callbacks(execute=True):
        deliver(shop, "shop/update", shop_body(iana_timezone=zone), when(10))
    entries = MembershipEvent.objects.filter(segment=segment, entered=True)
    assert list(entries.values_list("cause", flat=True)) == (["timezone"] if recomputed else [])


# -- app/scopes_update ---------------------------------------------------------------------------
def scopes_body(current, updated_at: str | None) -> dict:
    return {"id": 1, "previous": ["read_customers", "read_orders"], "current": current, "updated_at": updated_at}


def test_app_scopes_update_records_the_granted_scopes(shop):
    granted = ["read_customers", "write_customers", "read_orders", "read_products"]
    event = deliver(shop, "app/scopes_update", scopes_body(granted, when(10).isoformat()), when(10))
    assert (event.status, event.last_error) == (EventStatus.PROCESSED, "")
    shop.refresh_from_db()
    assert shop.granted_scopes == set(granted) and shop.has_scope("read_products")
    # an older change delivered late does not take the new scopes back
    deliver(shop, "app/scopes_update", scopes_body(["read_orders"], when(5).isoformat()), when(5))
    shop.refresh_from_db()
    assert shop.granted_scopes == set(granted)
    # one without its own time is ordered by when it was triggered; a comma-joined list is read too
    deliver(shop, "app/scopes_update", scopes_body("read_orders, read_customers", None), when(20))
    shop.refresh_from_db()
    assert shop.scope_list == ["read_customers", "read_orders"]


def test_scopes_granted_by_a_token_are_newer_than_an_earlier_scopes_update(shop):
    shop_tokens_store(shop=shop, tokens=TokenSet(access_token="shpat_new", scopes=("read_orders", "write_customers"),
                                                 expires_at=None, refresh_token=None, refresh_expires_at=None))
    deliver(shop, "app/scopes_update", scopes_body(["read_orders"], when(10).isoformat()), when(10))
    shop.refresh_from_db()
    assert shop.scope_list == ["read_orders", "write_customers"]


def test_app_scopes_update_from_devstore(shop, tmp_path):
    from devstore import payloads
    from devstore.state import DevStore, Event

    store = DevStore(tmp_path / "devstore.db")
    store.shop_create(shop.domain)
    body = payloads.build(store, Event(shop.domain, "app/scopes_update", "AppInstallation", 1, {
        "previous": ["read_orders"], "current": ["read_orders", "read_products"],
        "occurred_at": when(10).isoformat()}))
    store.close()
    deliver(shop, "app/scopes_update", body, when(10))
    shop.refresh_from_db()
    assert shop.scope_list == ["read_orders", "read_products"]


def test_a_scope_change_subscribes_to_what_the_scopes_now_allow(installed_shop, devstore,
                                                                django_capture_on_commit_callbacks):
    def topics() -> set[str]:
        return {s["topic"] for s in devstore.control("GET", f"/shops/{installed_shop.domain}/webhooks")["subscriptions"]}

    assert "PRODUCTS_UPDATE" in topics()
    without_products = [scope for scope in installed_shop.scope_list if scope != "read_products"]
    with django_capture_on_commit_callbacks(execute=True):
        deliver(installed_shop, "app/scopes_update", scopes_body(without_products, timezone_now_iso()), None)
    assert not {"PRODUCTS_CREATE", "PRODUCTS_UPDATE", "PRODUCTS_DELETE"} & topics()
    assert "ORDERS_CREATE" in topics()


def timezone_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


# -- one list of topics --------------------------------------------------------------------------
def test_the_topics_subscribed_are_the_topics_handled():
    """One list: the handler table. Subscribed topics are its topics but the compliance ones (set in
    the app's TOML only), spelled as Shopify spells them (devstore's table of Shopify's topics)."""
    compliance = {"customers/data_request", "customers/redact", "shop/redact"}
    assert set(WEBHOOK_TOPICS) == {devstore_topics.TOPICS[topic] for topic in set(HANDLERS) - compliance}
    assert {t for t, spec in TOPICS.items() if not spec.subscribed} == compliance
    assert (WEBHOOK_TOPICS["ORDERS_CREATE"], WEBHOOK_TOPICS["PRODUCTS_UPDATE"], WEBHOOK_TOPICS["SHOP_UPDATE"],
            WEBHOOK_TOPICS["CUSTOMERS_MARKETING_CONSENT_UPDATE"]) == ("read_orders", "read_products", None,
                                                                      "read_customers")
