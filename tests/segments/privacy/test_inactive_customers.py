"""Retention of inactive customers: anonymised past the shop's period and nothing else, filled in again
when they come back, off at zero; the setting through the API and the page."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from segments.measurement.snapshots import kpi_snapshot_day
from segments.membership.definitions import segment_create
from segments.membership.models import TagChange
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer, Order
from segments.shops.calendar import shop_today
from tests.segments.privacy.privacy_scan import Needles, database_scan
from tests.segments.privacy.test_privacy import sample
from tests.segments.tags.conftest import BUYERS, REPEAT, tagstore  # noqa: F401 - the fixture
from tests.segments.web.api.conftest import api, assert_error, shop  # noqa: E402,F401 - fixtures
from tests.segments.web.pages.conftest import get_page  # noqa: E402,F401 - the fixture
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


# -- retention: inactive customers ---------------------------------------------------------------------
LAPSED = {"version": 1, "include": {"metric": "days_since_last_order", "op": "gt", "value": 365}}


WHOLESALE_SUBSCRIBERS = {"version": 1, "include": {"all": [
    {"metric": "has_tag", "op": "is", "value": True, "params": {"tag": "wholesale"}},
    {"metric": "email_marketing", "op": "eq", "value": "subscribed"}]}}


INACTIVE, BY_ORDER, BY_CHECKOUT, BY_PROFILE, NEW = 61, 62, 63, 64, 65


@pytest.fixture
def retention_shop():
    from segments.shops.models import Shop
    return Shop.objects.create(domain="retention.myshopify.com", iana_timezone="UTC", inactive_customer_days=365)


def customer_rows(shop, sid: int) -> dict:
    """Everything stored about one customer, as comparable data."""
    from django.forms.models import model_to_dict

    from segments.membership.models import Membership, MembershipEvent
    from segments.metrics.models import CustomerMetrics
    from segments.mirror.models import Checkout
    from segments.tags.models import TagAudit
    customer = Customer.objects.get(shop=shop, shopify_id=sid)
    return {
        "customer": model_to_dict(customer),
        "orders": [model_to_dict(o) for o in Order.objects.filter(customer=customer).order_by("pk")],
        "checkouts": [model_to_dict(c) for c in Checkout.objects.filter(customer=customer).order_by("pk")],
        "metrics": model_to_dict(CustomerMetrics.objects.get(customer=customer), exclude=["computed_at"]),
        "memberships": sorted(Membership.objects.filter(customer=customer).values_list("segment_id", "holdout",
                                                                                       "entered_at")),
        "history": list(MembershipEvent.objects.filter(customer=customer).order_by("pk").values_list(
            "segment_id", "entered", "at")),
        "outbox": list(TagChange.objects.filter(customer=customer).order_by("pk").values_list("tag", "add")),
        "audit": list(TagAudit.objects.filter(customer=customer).order_by("pk").values_list("tag", "add")),
        "payloads": list(WebhookEvent.objects.filter(shop_domain=shop.domain, payload__customer__id=sid)
                         .order_by("pk").values_list("payload", flat=True)),
    }


def kpi_rows(shop) -> list[dict]:
    from segments.measurement.models import SegmentKpiSnapshot
    return list(SegmentKpiSnapshot.objects.filter(shop=shop).order_by("segment_id", "day").values(
        "segment_id", "day", "members", "holdout_members", "orders", "buyers", "repeat_buyers", "revenue",
        "store_revenue", "clv_total"))


def quiet_and_busy_customers(shop) -> None:
    """One customer quiet for two years (with a late delivery about an old order of theirs), and one
    each kept active by an order, a checkout, a profile change, or a recent sign-up."""
    from segments.mirror.models import Checkout
    from segments.mirror.records import CustomerRecord
    from segments.mirror.writer import customers_upsert
    from tests.segments.engine.test_metrics_table import Mirror, days

    m = Mirror(shop)
    for sid in (INACTIVE, BY_ORDER, BY_CHECKOUT, BY_PROFILE):
        m.customer(sid, created_days_ago=900)
        m.order(sid, 800, email=f"c{sid}@example.com", codes=("WELCOME",))
    m.customer(NEW, created_days_ago=100)
    Customer.objects.filter(shop=shop, shopify_id=INACTIVE).update(
        first_name="Ottoline", last_name="Quarrington", phone="+16135550142", tags=["wholesale"],
        email_marketing="subscribed")
    Customer.objects.filter(shop=shop, shopify_id=BY_PROFILE).update(tags=["wholesale"], email_marketing="subscribed")
    m.order(INACTIVE, 600, email=f"c{INACTIVE}@example.com")
    m.checkout(INACTIVE, 500, email=f"c{INACTIVE}@example.com")
    m.order(BY_ORDER, 30)
    m.checkout(BY_CHECKOUT, 10, email=f"c{BY_CHECKOUT}@example.com")
    customers_upsert(shop=shop, records=[CustomerRecord(BY_PROFILE, updated_at=days(5), created_at=days(900),
                                                        email=f"c{BY_PROFILE}@example.com", first_name="Pat",
                                                        tags=["wholesale"])])
    assert Checkout.objects.filter(shop=shop).count() == 2
    late = sample("orders/updated")
    late.update(id=Order.objects.filter(customer__shopify_id=INACTIVE).earliest("created_at").shopify_id,
                email=f"c{INACTIVE}@example.com", customer={"id": INACTIVE, "first_name": "Ottoline"},
                shipping_address={"address1": "17 Quillfeather Lane", "last_name": "Quarrington"})
    WebhookEvent.objects.create(webhook_id="late-refund", shop_domain=shop.domain, topic="orders/updated",
                                payload=late, status=EventStatus.PROCESSED,
                                received_at=timezone.now() - dt.timedelta(days=3))
    WebhookEvent.objects.create(webhook_id="busy-order", shop_domain=shop.domain, topic="orders/create",
                                payload={"id": 1, "customer": {"id": BY_ORDER}, "email": f"c{BY_ORDER}@example.com"},
                                status=EventStatus.PROCESSED, received_at=timezone.now() - dt.timedelta(days=3))


def segments_and_kpis(shop) -> None:
    for name, rules in (("Buyers", BUYERS), ("Lapsed", LAPSED), ("Wholesale subscribers", WHOLESALE_SUBSCRIBERS)):
        segment_create(shop=shop, name=name, rules=rules)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop)
    kpi_snapshot_day(shop=shop, day=shop_today(shop))


def test_retention_anonymises_a_customer_inactive_past_the_period_and_nothing_else(retention_shop):
    from segments.privacy.compliance import shop_inactive_customers_anonymise
    from segments.privacy.tasks import inactive_customers_sweep_task

    shop = retention_shop
    quiet_and_busy_customers(shop)
    segments_and_kpis(shop)
    busy = {sid: customer_rows(shop, sid) for sid in (BY_ORDER, BY_CHECKOUT, BY_PROFILE, NEW)}
    quiet = customer_rows(shop, INACTIVE)
    kpis = kpi_rows(shop)
    # buyers, lapsed, wholesale subscribers: the quiet customer counts in all three
    assert [(k["members"], k["clv_total"]) for k in kpis] == [(4, Decimal("300.00")), (3, Decimal("200.00")),
                                                            (2, Decimal("150.00"))]
    in_segments = quiet["memberships"]
    assert len(in_segments) == 3

    # (a delivery about them that no worker has applied yet: they may be coming back)
    pending = WebhookEvent.objects.create(webhook_id="just-in", shop_domain=shop.domain, topic="orders/create",
                                          payload={"id": 7, "customer": {"id": INACTIVE}}, status=EventStatus.PENDING)

    # when the hourly beat task runs
    assert inactive_customers_sweep_task() == 1

    # then the quiet customer's identity is gone from the store copy ...
    after = customer_rows(shop, INACTIVE)
    assert {k: after["customer"][k] for k in ("email", "phone", "first_name", "last_name")} == \
        {"email": "", "phone": "", "first_name": "", "last_name": ""}
    assert [o["email"] for o in after["orders"]] == ["", ""] and [c["email"] for c in after["checkouts"]] == [""]
    assert WebhookEvent.objects.get(webhook_id="late-refund").payload == {}
    assert WebhookEvent.objects.filter(pk=pending.pk, status=EventStatus.PENDING, payload=pending.payload).exists()
    assert database_scan(Needles(ids=(), texts=(f"c{INACTIVE}@example.com", "+16135550142", "6135550142",
                                                "Ottoline", "Quarrington", "17 Quillfeather Lane"))) == set()
    # ... and what they did stays, under the same Shopify id: orders (amounts, codes), checkouts,
    # consent and tags, so their metrics, segments, tag outbox and history are as they were
    def without_identity(rows: dict) -> dict:
        return {**rows, "customer": {k: v for k, v in rows["customer"].items()
                                     if k not in ("email", "phone", "first_name", "last_name")},
                "orders": [{k: v for k, v in o.items() if k != "email"} for o in rows["orders"]],
                "checkouts": [{k: v for k, v in c.items() if k != "email"} for c in rows["checkouts"]],
                "payloads": []}
    assert without_identity(after) == without_identity(quiet)
    assert after["customer"]["shopify_id"] == INACTIVE and after["customer"]["tags"] == ["wholesale"]
    # recomputed as the nightly run would: the same members, no tag change queued, the same KPIs
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop)
    kpi_snapshot_day(shop=shop, day=shop_today(shop))
    assert customer_rows(shop, INACTIVE)["memberships"] == in_segments
    assert customer_rows(shop, INACTIVE)["outbox"] == quiet["outbox"]
    assert kpi_rows(shop) == kpis
    # and nothing at all happened to the customers kept active by an order, a checkout, a profile
    # change or a recent sign-up
    assert {sid: customer_rows(shop, sid) for sid in busy} == busy
    assert WebhookEvent.objects.get(webhook_id="busy-order").payload["email"] == f"c{BY_ORDER}@example.com"
    # a second run finds nobody
    assert shop_inactive_customers_anonymise(shop=shop) == 0


def test_an_anonymised_customer_who_comes_back_is_filled_in_by_shopify(retention_shop):
    from segments.mirror.records import CustomerRecord
    from segments.mirror.writer import customers_upsert
    from segments.privacy.compliance import shop_inactive_customers_anonymise

    quiet_and_busy_customers(retention_shop)
    assert shop_inactive_customers_anonymise(shop=retention_shop) == 1
    customers_upsert(shop=retention_shop, records=[CustomerRecord(
        INACTIVE, updated_at=timezone.now(), email="ottoline@example.org", first_name="Ottoline")])
    back = Customer.objects.get(shop=retention_shop, shopify_id=INACTIVE)
    assert (back.email, back.first_name) == ("ottoline@example.org", "Ottoline")
    assert shop_inactive_customers_anonymise(shop=retention_shop) == 0       # active again


def test_retention_set_to_zero_anonymises_nobody(retention_shop):
    from segments.privacy.compliance import shop_inactive_customers_anonymise
    from segments.privacy.tasks import inactive_customers_sweep_task

    quiet_and_busy_customers(retention_shop)
    retention_shop.__class__.objects.filter(pk=retention_shop.pk).update(inactive_customer_days=0)
    retention_shop.refresh_from_db()
    before = customer_rows_plain(retention_shop)

    assert inactive_customers_sweep_task() == 0
    assert shop_inactive_customers_anonymise(shop=retention_shop) == 0
    assert customer_rows_plain(retention_shop) == before


def customer_rows_plain(shop) -> list:
    return list(Customer.objects.filter(shop=shop).order_by("pk").values()) + list(
        Order.objects.filter(shop=shop).order_by("pk").values("email")) + list(
        WebhookEvent.objects.filter(shop_domain=shop.domain).order_by("pk").values("payload"))


def test_inactive_customer_days_is_read_and_changed_over_the_api(api, shop):
    from segments.shops.models import Shop

    body = api.get("/api/settings").json()
    assert body["inactive_customer_days"] == 730
    assert body["ranges"]["inactive_customer_days"] == {"min": 30, "max": 3650, "off": 0}
    for value in (0, 30, 3650, 400):
        changed = api.patch("/api/settings", {"inactive_customer_days": value})
        assert changed.status_code == 200, changed.content
        assert changed.json()["inactive_customer_days"] == value
        assert Shop.objects.get(pk=shop.pk).inactive_customer_days == value


@pytest.mark.parametrize("value", [1, 29, 3651, -1, "400", True, None, 400.5])
def test_an_unusable_inactive_customer_days_is_refused_and_nothing_saved(api, shop, value):
    from segments.shops.models import Shop

    before = Shop.objects.filter(pk=shop.pk).values().get()
    error = assert_error(api.patch("/api/settings", {"recompute_hour": 4, "inactive_customer_days": value}), 400,
                         "invalid_settings")
    assert [p["path"] for p in error["problems"]] == ["inactive_customer_days"]
    assert "0 (never)" in error["problems"][0]["message"]
    assert Shop.objects.filter(pk=shop.pk).values().get() == before


def test_settings_page_states_what_anonymising_does(get_page, installed_shop):
    installed_shop.inactive_customer_days = 400
    installed_shop.save()
    html = get_page(installed_shop, "/admin/settings").content.decode()
    assert 'id="inactive_customer_days" name="inactive_customer_days" data-path="inactive_customer_days" min="0" ' \
           'max="3650" step="1" value="400" data-initial="400"' in html
    assert "0 turns it off, otherwise 30 to 3650" in html
    assert "What anonymising a customer does" in html
    assert "Their segments, tags and KPIs do not change" in html
    assert "they keep counting in KPIs by their orders" in html
    assert "In member lists they show as “Customer” and their Shopify id" in html


def test_an_anonymised_member_shows_as_customer_and_id(get_page, installed_shop):
    """What the settings page promises the member list does."""
    from segments.privacy.compliance import shop_inactive_customers_anonymise

    installed_shop.inactive_customer_days = 365
    installed_shop.save()
    quiet_and_busy_customers(installed_shop)
    segment = segment_create(shop=installed_shop, name="Lapsed", rules=LAPSED)
    customer_metrics_rebuild(shop=installed_shop)
    segments_recompute(shop=installed_shop)
    assert shop_inactive_customers_anonymise(shop=installed_shop) == 1

    html = get_page(installed_shop, f"/admin/segments/{segment.pk}").content.decode()

    assert f">Customer {INACTIVE}</a>" in html and "Ottoline" not in html and f"c{INACTIVE}@example.com" not in html
    found = get_page(installed_shop, f"/admin/segments/{segment.pk}", q="Ottoline").content.decode()
    assert f"Customer {INACTIVE}" not in found
