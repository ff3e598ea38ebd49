"""The measurement pages in headless Chromium, framed by devstore's admin at 1280 px: each page's
numbers are read off the page (cells, axis ticks, legend) and checked against the seeded store,
written in the shop's currency and in percent; a full-height screenshot of each is saved."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db.models import Sum
from django.utils import timezone
from playwright.sync_api import expect

from segments.measurement.lift import default_period, segment_lift
from segments.measurement.models import SegmentKpiSnapshot
from segments.measurement.review import month_bounds
from segments.measurement.snapshots import kpi_snapshot_day, kpi_snapshots_backfill
from segments.membership.models import ExclusiveGroup, Membership, MembershipEvent
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer, LineItem, Order, VariantCost
from segments.mirror.order_costs import order_costs_refresh
from segments.shops.calendar import shop_today
from segments.shops.models import Shop
from tests.browser.conftest import app_frame, screenshot
from tests.conftest import install_live, settle
from tests.segments.measurement.conftest import Store, make_segment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HISTORY_DAYS = 40                     # membership computed this many days ago, and not since
DOLLARS = re.compile(r"^−?\$\d{1,3}(,\d{3})*(\.\d\d)?$")
PERCENT = re.compile(r"^−?\d+(\.\d+)?%$")
DAY = re.compile(r"^[A-Z][a-z]{2} \d{1,2}$")
NOBODY = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1000}}


@pytest.fixture
def measured_app(devstore, live_server, settings):
    domain, admin_url = install_live(devstore, live_server, settings)
    settle(devstore, domain)    # the backfill's end recomputes the segments, now, in a live-server thread
    shop = Shop.objects.get(domain=domain)
    assert shop.currency == "USD"
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
    segments_recompute(shop=shop, now=store.local(today - dt.timedelta(days=HISTORY_DAYS)))
    for segment in shop.segments.all():
        kpi_snapshots_backfill(segment=segment, days=60)
    kpi_snapshot_day(shop=shop, day=today - dt.timedelta(days=1))
    return shop, buyers, admin_url


def open_in_frame(page, admin_url: str, path: str, query: str = ""):
    page.goto(admin_url)
    frame = app_frame(page)
    parts = urlsplit(frame.url)
    frame.goto(urlunsplit((parts.scheme, parts.netloc, path, parts.query + query, "")))
    frame.wait_for_selector("main h1")
    return frame


def full_screenshot(page, frame, name: str):
    """The whole framed page: the admin's iframe fills the viewport below its 48 px bar, so the
    viewport is made as tall as the app's document (still 1280 wide)."""
    height = frame.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": 48 + height})
    frame.wait_for_timeout(100)    # one layout pass at the new size before the capture
    return screenshot(page, name)


def dollars(value) -> str:
    """Written independently of the app's helper: $1,234.50."""
    return f"${Decimal(value):,.2f}"


def assert_dollars(shown: str, expected) -> None:
    """`shown` is a dollar amount within half a cent of `expected` (the app rounds floats, the test decimals)."""
    assert DOLLARS.match(shown), shown
    assert abs(Decimal(shown.replace("−", "-").replace("$", "").replace(",", "")) - Decimal(expected)) <= Decimal(
        "0.0051"), (shown, expected)


def texts(frame, selector: str) -> list[str]:
    return [t.strip() for t in frame.locator(selector).all_text_contents()]


def assert_fits(frame, selector: str):
    """`selector` (or the box that scrolls it) ends inside its card, and the card inside the frame."""
    box = frame.evaluate("""s => { const found = document.querySelector(s);
        const el = found.closest('.table-scroll') || found; const card = el.closest('.card');
        return {right: el.getBoundingClientRect().right, card: card.getBoundingClientRect().right,
                page: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth}; }""",
                         selector)
    assert box["right"] <= box["card"] + 1 and box["card"] <= box["page"] and box["scroll"] <= box["page"], box


def test_kpis_page_reads_members_money_rates_and_axes(page, measured_app):
    shop, buyers, admin_url = measured_app
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    frame = open_in_frame(page, admin_url, "/admin/measurement")
    assert frame.inner_text("h1") == "KPIs"

    # The latest day of Buyers: members without the holdout, lifetime spend per member in dollars.
    treated = list(Membership.objects.filter(segment=buyers, holdout=False).values_list("customer_id", flat=True))
    held_out = Membership.objects.filter(segment=buyers, holdout=True).count()
    spent = Order.objects.filter(customer_id__in=treated).aggregate(total=Sum("total"))["total"]
    row = frame.locator(f"#latest-table tr[data-segment='{buyers.pk}']")
    assert row.locator("[data-kpi=members]").inner_text() == f"{len(treated):,}"
    assert row.locator("[data-kpi=holdout]").inner_text() == f"{held_out:,}"
    assert_dollars(row.locator("[data-kpi=avg_clv]").inner_text(), spent / len(treated))
    assert row.locator("[data-kpi=revenue]").inner_text() == "$0.00"       # nobody ordered yesterday
    assert PERCENT.match(row.locator("[data-kpi=conversion]").inner_text())
    assert "held out included" in frame.inner_text("#members-note")

    # Charts: round dollar ticks from $0 up past the largest day's revenue ($80), dates along x.
    revenue_ticks = texts(frame, "[data-chart=Revenue] .y-tick")
    assert revenue_ticks[0] == "$0" and all(DOLLARS.match(t) for t in revenue_ticks), revenue_ticks
    values = [int(t.strip("$").replace(",", "")) for t in revenue_ticks]
    assert len({b - a for a, b in zip(values, values[1:])}) == 1 and values[-1] >= 80, values
    assert all(t.endswith("%") for t in texts(frame, "[data-chart=Conversion] .y-tick"))
    members_ticks = texts(frame, "[data-chart=Members] .y-tick")
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", t) for t in members_ticks)
    assert int(members_ticks[-1].replace(",", "")) >= len(treated)
    days = texts(frame, "[data-chart=Members] .x-tick")
    start = yesterday - dt.timedelta(days=89)
    assert all(DAY.match(d) for d in days) and days[0] == f"{start:%b} {start.day}"
    assert texts(frame, "[data-chart=Revenue] .y-title") == ["Revenue per day (USD)"]

    # Two segments, two lines per chart, each in its own colour, named in the legend.
    largest_first = [snap.segment.name for snap in SegmentKpiSnapshot.objects.filter(shop=shop, day=yesterday)
                     .select_related("segment").order_by("-members", "segment_id")]
    assert texts(frame, "#kpi-legend li") == largest_first and set(largest_first) == {"Buyers", "Big spenders"}
    colours = frame.eval_on_selector_all("#kpi-legend li span", "els => els.map(e => e.style.background)")
    assert len(set(colours)) == 2
    for chart in ("Members", "Revenue", "Conversion", "Average CLV (observed)"):
        assert frame.locator(f"[data-chart='{chart}'] g.series").count() == 2
    assert_fits(frame, "#latest-table")
    full_screenshot(page, frame, "measurement-kpis")

    # The chooser: Buyers alone.
    frame.uncheck("#series-choice input[value='%d']" % next(
        s.pk for s in shop.segments.all() if s.name == "Big spenders"))
    frame.click("#kpi-form button[type=submit]")
    expect(frame.locator("#kpi-legend li")).to_have_count(1)           # the page came back with one series
    assert re.search(rf"segments={buyers.pk}(&|$)", frame.url)
    assert texts(frame, "#kpi-legend li") == ["Buyers"]
    assert frame.locator("[data-chart=Revenue] g.series").count() == 1

    # A period that runs backwards: the API's words, and the default 90 days shown.
    frame = open_in_frame(page, admin_url, "/admin/measurement", "&start=2026-10-02&end=2026-10-01")
    expect(frame.get_by_text("The period's start must not be after end; showing the default period.")).to_be_visible()
    assert frame.input_value("input[name=end]") == yesterday.isoformat()
    full_screenshot(page, frame, "measurement-kpis-bad-period")


def test_lift_page_reads_rates_in_percent_and_money_in_dollars(page, measured_app):
    shop, buyers, admin_url = measured_app
    frame = open_in_frame(page, admin_url, f"/admin/segments/{buyers.pk}/lift")
    assert frame.inner_text("h1") == "Lift: Buyers"
    start, end = default_period(buyers)
    lift = segment_lift(segment=buyers, start=start, end=end)       # what the page and its API compute
    conversion = frame.locator("#lift-table tr[data-kpi=conversion]")
    assert conversion.locator("[data-cell=treatment]").inner_text() == f"{lift.conversion.treatment * 100:.1f}%"
    assert conversion.locator("[data-cell=control]").inner_text() == f"{lift.conversion.control * 100:.1f}%"
    assert re.fullmatch(r"[+−]?\d+\.\d pts", conversion.locator("[data-cell=diff]").inner_text())
    revenue = frame.locator("#lift-table tr[data-kpi=revenue_per_member]")
    assert_dollars(revenue.locator("[data-cell=treatment]").inner_text(), lift.revenue_per_member.treatment)
    assert DOLLARS.match(revenue.locator("[data-cell=diff]").inner_text().lstrip("+"))
    assert "Sample ratio" in frame.inner_text("#srm")
    assert "Too few members" in frame.inner_text("main")
    full_screenshot(page, frame, "measurement-lift")


def test_migration_matrix_reads_its_counts_fits_its_card_and_says_why_nothing_moved(page, measured_app):
    shop, buyers, admin_url = measured_app
    group = ExclusiveGroup.objects.get(shop=shop)
    long_name = "Customers who bought twice in the spring sale, then never again, not even at Christmas"
    make_segment(shop, long_name.strip(), NOBODY, group=group, priority=3)
    frame = open_in_frame(page, admin_url, "/admin/migration")
    assert frame.inner_text("h1") == "Migration"
    assert frame.locator("#migration-matrix tbody tr").count() == 4      # three tiers and "none"
    assert "No customer moved between segments in this period" in frame.inner_text("#migration-empty")
    stayed = Membership.objects.filter(segment=buyers).count()         # held out included, as the note says
    row = frame.locator("#migration-matrix tbody tr", has=frame.locator("th[title='Buyers']"))
    assert row.locator("td.stay").inner_text().split("\n") == [f"{stayed:,}", "100%"]
    assert row.locator("td.total").inner_text() == f"{stayed:,}"
    header = frame.locator(f"#migration-matrix thead th[title='{long_name.strip()}'] .name")
    assert header.evaluate("e => e.scrollHeight > e.clientHeight")     # cut at two lines, the whole name in its title
    assert_fits(frame, "#migration-matrix")
    full_screenshot(page, frame, "measurement-migration")

    before = shop_today(shop) - dt.timedelta(days=HISTORY_DAYS + 10)
    first = shop_today(shop) - dt.timedelta(days=HISTORY_DAYS)
    frame = open_in_frame(page, admin_url, "/admin/migration",
                          f"&start={before - dt.timedelta(days=5)}&end={before}")
    assert (f"Membership history begins on {first:%b} {first.day}, {first.year}"
            in frame.inner_text("#migration-empty"))
    assert frame.locator("#migration-matrix").count() == 0             # no matrix of zeros to misread
    full_screenshot(page, frame, "measurement-migration-before-history")


def test_review_page_reads_last_months_money_and_members(page, measured_app):
    shop, buyers, admin_url = measured_app
    month_first = shop_today(shop).replace(day=1) - dt.timedelta(days=1)
    first, last = month_bounds(month_first.strftime("%Y-%m"))
    snaps = SegmentKpiSnapshot.objects.filter(segment=buyers, day__gte=first, day__lte=last)
    totals = snaps.aggregate(revenue=Sum("revenue"), orders=Sum("orders"))
    assert totals["revenue"] > 0
    frame = open_in_frame(page, admin_url, "/admin/review")
    assert f"{first:%B %Y} against" in frame.inner_text("h1 + p")
    row = frame.locator("#review-table tr", has=frame.locator("th", has_text="Buyers"))
    assert row.locator("[data-kpi=revenue]").inner_text() == dollars(totals["revenue"])
    assert row.locator("[data-kpi=orders]").inner_text() == f"{totals['orders']:,}"
    assert_dollars(row.locator("[data-kpi=aov]").inner_text(), totals["revenue"] / totals["orders"])
    assert row.locator("[data-kpi=members]").inner_text() == f"{snaps.order_by('-day').first().members:,}"
    assert frame.locator("a.measure-export").count() == 2
    assert_fits(frame, "#review-table")
    full_screenshot(page, frame, "measurement-review")


def test_many_segments_five_largest_by_default_and_a_wide_matrix_stays_in_its_card(page, measured_app):
    shop, buyers, admin_url = measured_app
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    names = ["Lapsed VIPs", "Winter coat buyers", "First-time buyers this quarter", "Discount hunters",
             "Wholesale accounts", "Newsletter subscribers who never ordered", "Gift card buyers", "Returners",
             "High refund rate", "Mobile shoppers", "Weekend shoppers", "Loyal locals"]
    extra = [make_segment(shop, name, NOBODY) for name in names]
    for i, segment in enumerate(extra):       # sizes 100, 200, ... so the five largest are the last five
        for back in range(30):
            SegmentKpiSnapshot.objects.update_or_create(
                segment=segment, day=yesterday - dt.timedelta(days=back),
                defaults={"shop": shop, "members": 100 * (i + 1) + back, "buyers": (i + back) % 7,
                          "orders": (i + back) % 7, "revenue": Decimal(37 * ((i + back) % 7)),
                          "clv_total": Decimal(4000 * (i + 1))})
    frame = open_in_frame(page, admin_url, "/admin/measurement")
    assert texts(frame, "#kpi-legend li") == names[:-6:-1]
    assert frame.locator("#series-choice input[type=checkbox]").count() == 2 + len(names)
    assert frame.locator("#series-choice input:checked").count() == 5
    colours = frame.eval_on_selector_all("#kpi-legend li span", "els => els.map(e => e.style.background)")
    assert len(set(colours)) == 5
    assert_fits(frame, "#latest-table")
    full_screenshot(page, frame, "measurement-kpis-many")

    frame = open_in_frame(page, admin_url, "/admin/migration", "&group=all")
    assert frame.locator("#migration-matrix thead th").count() == 1 + 2 + len(names) + 1 + 1
    assert_fits(frame, "#migration-matrix")
    full_screenshot(page, frame, "measurement-migration-many")


def test_kpis_and_review_pages_show_profit_from_unit_costs(page, measured_app):
    shop, buyers, admin_url = measured_app
    frame = open_in_frame(page, admin_url, "/admin/measurement")
    row = frame.locator("#profit-table tr", has=frame.locator("th", has_text="Buyers"))
    # The seeded orders have no line items: profit is what was refunded, taken away, so never above $0.
    shown = row.locator("[data-kpi=gross_profit]").inner_text()
    assert DOLLARS.match(shown) and (shown == "$0.00" or shown.startswith("−")), shown
    VariantCost.objects.create(shop=shop, inventory_item_id=1, variant_id=31, unit_cost=Decimal("7.00"))
    customer = Customer.objects.get(shop=shop, shopify_id=1)
    at = timezone.now() - dt.timedelta(days=2)
    order = Order.objects.create(shop=shop, shopify_id=99_000_001, customer=customer, created_at=at, updated_at=at,
                                 total=Decimal("30.00"))
    LineItem.objects.create(shop=shop, order=order, shopify_id=99_000_002, variant_id=31, quantity=3,
                            price=Decimal("10.00"))
    order_costs_refresh(shop=shop)
    frame = open_in_frame(page, admin_url, "/admin/measurement")
    assert frame.locator("#profit-unmeasured").count() == 0
    expect(frame.locator("#profit-table tbody tr").first).to_be_visible()
    full_screenshot(page, frame, "measurement-kpis-profit")
    LineItem.objects.create(shop=shop, order=order, shopify_id=99_000_003, variant_id=32, quantity=1,
                            price=Decimal("5.00"))     # a variant without a cost
    order_costs_refresh(shop=shop)
    frame = open_in_frame(page, admin_url, "/admin/measurement")
    expect(frame.locator("#profit-unmeasured")).to_contain_text("1 order lines in this period have no unit cost")
    assert_fits(frame, "#profit-table")
