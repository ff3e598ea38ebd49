"""The measurement pages in headless Chromium, framed by devstore's admin: KPIs with SVG charts,
a segment's lift table, the migration heatmap and the monthly review each render with data."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit, urlunsplit

import pytest

from segments.models import ExclusiveGroup, Membership, MembershipEvent, Shop
from segments.services.kpi_snapshots import kpi_snapshot_day, kpi_snapshots_backfill, shop_today
from segments.services.membership import segments_recompute
from segments.services.metrics import customer_metrics_rebuild
from tests.browser.conftest import app_frame, screenshot
from tests.conftest import install_live, settle
from tests.segments.measurement.conftest import Store, make_segment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def measured_app(devstore, live_server, settings):
    domain, admin_url = install_live(devstore, live_server, settings)
    settle(devstore, domain)    # the backfill's end recomputes the segments, now, in a live-server thread
    shop = Shop.objects.get(domain=domain)
    store = Store(shop)
    today = shop_today(shop)
    store.customers(range(1, 61), created=store.local(today - dt.timedelta(days=120)))
    for sid in range(1, 51):
        store.order(sid, store.local(today - dt.timedelta(days=(sid * 7) % 60 + 2)), f"{30 + sid}.00")
    group = ExclusiveGroup.objects.create(shop=shop, name="Ladder")
    buyers = make_segment(shop, "Buyers", {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}},
                          holdout_percent=30, group=group, priority=1)
    make_segment(shop, "Big spenders", {"version": 1, "include": {"metric": "total_spent", "op": "gte", "value": 60}},
                 group=group, priority=2)
    # Creating a segment may already have computed it (eagerly, now) depending on what ran before;
    # the history this page needs starts 40 days ago, so membership is computed afresh from then.
    Membership.objects.filter(shop=shop).delete()
    MembershipEvent.objects.filter(shop=shop).delete()
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=store.local(today - dt.timedelta(days=40)))
    for segment in shop.segments.all():
        kpi_snapshots_backfill(segment=segment, days=60)
    kpi_snapshot_day(shop=shop, day=today - dt.timedelta(days=1))
    return shop, buyers, admin_url


def shop_currency(segment) -> str:
    return Shop.objects.get(pk=segment.shop_id).currency


def open_in_frame(page, admin_url: str, path: str):
    page.goto(admin_url)
    frame = app_frame(page)
    parts = urlsplit(frame.url)
    frame.goto(urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")))
    frame.wait_for_selector("main h1")
    return frame


def test_kpis_page_draws_charts_side_by_side(page, measured_app):
    shop, _, admin_url = measured_app
    frame = open_in_frame(page, admin_url, "/admin/measurement")
    assert frame.inner_text("h1") == "KPIs"
    assert frame.locator("svg polyline").count() >= 4 * 2     # four charts, two segments each
    assert "Buyers" in frame.inner_text(".measure-table") and "days estimated" in frame.inner_text(".measure-table")
    screenshot(page, "measurement-kpis")


def test_lift_page_shows_the_comparison_table(page, measured_app):
    _, buyers, admin_url = measured_app
    frame = open_in_frame(page, admin_url, f"/admin/segments/{buyers.pk}/lift")
    assert frame.inner_text("h1") == "Lift: Buyers"
    table = frame.inner_text("#lift-table")
    assert "Conversion rate" in table and "Revenue per member" in table and "Average order value" in table
    assert "%" in table.split("Revenue per member")[0] and shop_currency(buyers) in table   # rates and money read as such
    assert "Sample ratio" in frame.inner_text("#srm")
    assert "Too few members" in frame.inner_text("main")
    screenshot(page, "measurement-lift")


def test_migration_page_draws_the_heatmap(page, measured_app):
    _, _, admin_url = measured_app
    frame = open_in_frame(page, admin_url, "/admin/migration")
    assert frame.inner_text("h1") == "Migration"
    assert frame.locator("#migration-matrix tbody tr").count() == 3      # two tiers and "none"
    screenshot(page, "measurement-migration")


def test_review_page_renders_with_its_exports(page, measured_app):
    shop, _, admin_url = measured_app
    month = shop_today(shop).strftime("%Y-%m")
    frame = open_in_frame(page, admin_url, "/admin/review")
    frame.fill("input[name=month]", month)
    frame.click("form button[type=submit]")
    frame.wait_for_selector(f"h1 + p:has-text('{month}')")
    assert "Buyers" in frame.inner_text("#review-table")
    assert frame.locator("a.measure-export").count() == 2
    screenshot(page, "measurement-review")
