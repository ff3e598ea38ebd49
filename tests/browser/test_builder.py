"""The segment builder in real Chromium inside devstore's Shopify admin, on a shop seeded with customers
and orders that the install backfilled: start from a template, edit a rule and watch the live count,
read the dry-run diff before saving, save and see the tag arrive in devstore, and a bad value refused.

Expected numbers come from the dry-run service itself (segment_dry_run) over the same mirror."""
from __future__ import annotations

import pytest
from django.utils.text import slugify
from playwright.sync_api import expect

from segments.engine.templates import TEMPLATE_BY_KEY
from segments.membership.definitions import segment_create, segment_dry_run
from segments.membership.models import Membership, Segment, SegmentVersion
from segments.metrics.models import CustomerMetrics
from segments.mirror.models import BackfillStatus, Customer, Order
from segments.shops.models import Shop
from segments.tags.tasks import shop_tags_sync_task
from tests.browser.conftest import app_frame, screenshot
from tests.conftest import install_live
from tests.segments.mirror.test_backfill import run_backfill
from tests.webhooks.test_worker import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 300


@pytest.fixture
def seeded(devstore, live_server, settings):
    """An installed shop whose history (customers, orders) the backfill brought into the mirror and the
    metrics table (its exports driven to the end as their finish webhooks would); tag sync goes direct."""
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 0     # the bulk path has its own tests
    domain, admin_url = install_live(devstore, live_server, settings, customers=CUSTOMERS)
    shop = Shop.objects.get(domain=domain)
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    assert Customer.objects.filter(shop=shop).count() == CUSTOMERS
    assert Order.objects.filter(shop=shop).exists()
    # the metrics table is built by the task the backfill's end queued (in whichever thread ended it)
    assert wait_until(lambda: CustomerMetrics.objects.filter(shop=shop).count() == CUSTOMERS)
    return shop, admin_url.split("?")[0].rstrip("/")


def open_builder(page, admin_url: str, path: str):
    """The admin's app page framing the builder at `path` (one bounce for a fresh session token)."""
    page.set_viewport_size({"width": 1024, "height": 2000})   # the admin's narrowest; tall to see it all
    page.goto(f"{admin_url}/{path}")
    frame = app_frame(page)
    frame.wait_for_selector("#rules .node")
    return frame


def leave_builder(page, builder_path: str) -> None:
    """After a save the app's frame navigates away from the builder (to the segment or home)."""
    app_frame(page).wait_for_url(lambda url: builder_path not in url and "id_token=" in url, wait_until="load")


def devstore_tags(devstore, shop: Shop, customer: Customer) -> list[str]:
    return devstore.control("GET", f"/shops/{shop.domain}/customers/{customer.shopify_id}/tags")["tags"]


def sync_tags(shop: Shop) -> None:
    """Tag sync as beat runs it, until the outbox is drained."""
    from segments.membership.models import TagChange

    for _ in range(20):
        shop_tags_sync_task(shop.pk)
        if not TagChange.objects.filter(shop=shop, processed_at__isnull=True).exists():
            return
    raise AssertionError("tag changes still pending after 20 sync runs")


def test_create_from_a_template_then_the_tag_arrives_in_devstore(page, seeded, devstore):
    shop, admin_url = seeded
    frame = open_builder(page, admin_url, "admin/segments/new")
    # Given the blank start: one condition, previewed
    blank = segment_dry_run(shop=shop, rules={"version": 1, "include": {"all": [
        {"metric": "orders_count", "op": "gte", "value": 1}]}})
    expect(frame.locator("#live-count")).to_have_text(f"{blank['size']:,}")
    screenshot(page, "builder-blank")

    # When the merchant picks the VIP template
    frame.click("[data-template='vip']")
    expect(frame.locator("[data-template='vip']")).to_have_attribute("aria-pressed", "true")
    # Then its rule is rendered as a condition and the live count is the service's
    expect(frame.locator("select[data-path='include.metric']")).to_have_value("spend_percentile")
    expect(frame.locator("input[data-path='include.value']")).to_have_value("0.9")
    vip = TEMPLATE_BY_KEY["vip"]
    handle = slugify(vip.name)
    expect(frame.locator("#setting-name")).to_have_value(vip.name)
    expected = segment_dry_run(shop=shop, rules={"version": 1, "include": {
        "metric": "spend_percentile", "op": "gte", "value": "0.9"}})
    assert 0 < expected["size"] < CUSTOMERS
    expect(frame.locator("#live-count")).to_have_text(f"{expected['size']:,}")
    expect(frame.locator("#diff-gain")).to_have_text(f"{expected['size']:,}")
    expect(frame.locator("#diff-lose")).to_have_text("0")
    expect(frame.locator(".diff-tag").first).to_have_text(f"seg:{handle}")
    expect(frame.locator("#setting-handle")).to_have_value(handle)        # the tag name follows the name
    screenshot(page, "builder-template")
    # and the merchant names the tag themselves
    handle = "vip-club"
    frame.fill("#setting-handle", handle)
    expect(frame.locator(".diff-tag").first).to_have_text(f"seg:{handle}")

    # When it is saved
    frame.locator("[data-action='save']").first.click()
    leave_builder(page, "/admin/segments/new")
    segment = Segment.objects.get(shop=shop)
    # Then the segment exists from the template, computed to the size the preview showed
    assert (segment.template, segment.handle, segment.name) == ("vip", handle, vip.name)
    assert segment.computed_version == segment.current_version == 1
    assert segment.member_count == expected["size"]
    assert SegmentVersion.objects.get(segment=segment).rules["include"]["metric"] == "spend_percentile"

    # And after tag sync a member carries the segment's tag in devstore, a non-member does not
    sync_tags(shop)
    member = Membership.objects.filter(segment=segment).select_related("customer").first().customer
    outsider = Customer.objects.filter(shop=shop).exclude(memberships__segment=segment).first()
    assert f"seg:{handle}" in devstore_tags(devstore, shop, member)
    assert f"seg:{handle}" not in devstore_tags(devstore, shop, outsider)


def test_edit_a_rule_watch_the_count_see_the_diff_save_and_tags_follow(page, seeded, devstore):
    shop, admin_url = seeded
    before = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "gte", "value": 3}]}}
    segment = segment_create(shop=shop, name="Regulars", rules=before)
    segment.refresh_from_db()
    assert segment.computed_version == 1 and segment.member_count > 0
    sync_tags(shop)
    frame = open_builder(page, admin_url, f"admin/segments/{segment.pk}/edit")
    expect(frame.locator("#live-count")).to_have_text(f"{segment.member_count:,}")
    expect(frame.locator("#diff-gain")).to_have_text("0")

    # When the threshold goes from 3 to 2 orders, the live count follows the dry-run service
    frame.fill("input[data-path='include.all[0].value']", "2")
    lower = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "gte", "value": 2}]}}
    expected = segment_dry_run(shop=shop, rules=lower, segment=segment)
    assert expected["size"] > segment.member_count
    expect(frame.locator("#live-count")).to_have_text(f"{expected['size']:,}")

    # When a second condition is added (focus moves to its metric picker) and set to a spend rank
    frame.click("#rules [data-action='add-condition']")
    expect(frame.locator("select[data-path='include.all[1].metric']")).to_be_focused()
    frame.select_option("select[data-path='include.all[1].metric']", "spend_percentile")
    expect(frame.locator("[data-path='include.all[1]'] > .metric-description")) \
        .to_contain_text("ranks among the shop's buyers")
    frame.fill("input[data-path='include.all[1].value']", "0.5")
    after = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "gte", "value": 2},
                                               {"metric": "spend_percentile", "op": "gte", "value": "0.5"}]}}
    diff = segment_dry_run(shop=shop, rules=after, segment=segment)
    assert diff["entries"] > 0 and diff["exits"] > 0
    # Then the diff before saving is the service's entries and exits
    expect(frame.locator("#live-count")).to_have_text(f"{diff['size']:,}")
    expect(frame.locator("#diff-gain")).to_have_text(f"{diff['entries']:,}")
    expect(frame.locator("#diff-lose")).to_have_text(f"{diff['exits']:,}")
    expect(frame.locator("#diff-line")).to_contain_text("seg:regulars")
    screenshot(page, "builder-diff")

    # Saving without a reason is refused at the reason field, and nothing is saved
    frame.locator("[data-action='save']").first.click()
    expect(frame.locator("#setting-reason-error")).to_contain_text("Required")
    expect(frame.locator("#setting-reason")).to_have_attribute("aria-invalid", "true")
    assert Segment.objects.get(pk=segment.pk).current_version == 1

    # With a reason it saves version 2, recomputed
    frame.fill("#setting-reason", "Reach two-order customers who spend")
    frame.locator("[data-action='save']").first.click()
    leave_builder(page, f"/admin/segments/{segment.pk}/edit")
    segment.refresh_from_db()
    assert segment.current_version == segment.computed_version == 2
    assert segment.member_count == diff["size"]
    version = SegmentVersion.objects.get(segment=segment, number=2)
    assert version.reason == "Reach two-order customers who spend"

    # And the tags in devstore follow: an entering customer gains seg:regulars, a leaving one loses it
    entered = Customer.objects.get(pk=diff["sample"]["entries"][0]["id"])
    left = Customer.objects.get(pk=diff["sample"]["exits"][0]["id"])
    assert "seg:regulars" in devstore_tags(devstore, shop, left)        # tagged under version 1
    sync_tags(shop)
    assert "seg:regulars" in devstore_tags(devstore, shop, entered)
    assert "seg:regulars" not in devstore_tags(devstore, shop, left)


def test_a_bad_value_is_shown_at_its_condition_and_save_is_refused(page, seeded):
    shop, admin_url = seeded
    frame = open_builder(page, admin_url, "admin/segments/new")
    expect(frame.locator("#live-count")).not_to_have_text("—")
    value = frame.locator("input[data-path='include.all[0].value']")

    # A negative order count: the server's problem lands on that input, announced
    value.fill("-5")
    error = frame.locator("[data-error-for='include.all[0].value']")
    expect(error).to_contain_text("whole number")
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(frame.locator("#live-status")).to_contain_text("1 problem in the rules")
    expect(frame.locator("#live-count")).to_have_text("—")
    frame.fill("#setting-name", "Broken")
    frame.locator("[data-action='save']").first.click()
    expect(frame.locator("#save-banner")).to_contain_text("Fix the problems marked in the rules")
    expect(value).to_be_focused()
    screenshot(page, "builder-error")

    # An empty value: a problem at the same condition, in the merchant's words
    value.fill("")
    expect(error).to_have_text("Enter a whole number of 0 or more.")

    # Fixed, but no name: the server refuses at the name field
    value.fill("2")
    expect(error).to_be_hidden()
    frame.fill("#setting-name", "")
    frame.locator("[data-action='save']").first.click()
    expect(frame.locator("#setting-name-error")).to_contain_text("non-blank")
    expect(frame.locator("#save-banner")).to_contain_text("not saved")
    # Nothing was saved
    assert not Segment.objects.filter(shop=shop).exists()
    assert not SegmentVersion.objects.filter(segment__shop=shop).exists()


# -- first-hour stumbles: a save that waits, a message in JSON terms, a duplicate segment -----------------
def hold_previews(page) -> list:
    """Every dry-run the page asks for from now on is held unanswered (a preview that takes very long)."""
    held = []
    page.route("**/api/segments/dry-run", lambda route: held.append(route))
    return held


def test_save_answers_without_waiting_for_a_preview(page, seeded):
    shop, admin_url = seeded
    frame = open_builder(page, admin_url, "admin/segments/new")
    expect(frame.locator("#live-count")).not_to_have_text("—")
    held = hold_previews(page)
    # Given an edit whose preview never comes back
    frame.fill("input[data-path='include.all[0].value']", "2")
    frame.fill("#setting-name", "Two or more orders")
    expect(frame.locator("#preview")).to_have_attribute("aria-busy", "true")
    for _ in range(200):          # (Playwright runs the route handler while it waits, not while Python sleeps)
        if held:
            break
        page.wait_for_timeout(100)
    assert held
    # When the merchant saves, the segment is saved with the rules as edited, and the page moves on
    frame.locator("[data-action='save']").first.click()
    leave_builder(page, "/admin/segments/new")
    segment = Segment.objects.get(shop=shop)
    assert segment.name == "Two or more orders"
    rules = SegmentVersion.objects.get(segment=segment).rules
    assert rules["include"]["all"][0] == {"metric": "orders_count", "op": "gte", "value": 2}
    assert held                    # the preview asked for was never answered: the save did not wait on it
    screenshot(page, "builder-saved-while-preview-pending")


def test_a_bad_amount_is_explained_in_the_merchants_words(page, seeded):
    shop, admin_url = seeded
    frame = open_builder(page, admin_url, "admin/segments/new")
    frame.select_option("select[data-path='include.all[0].metric']", "total_spent")
    value = frame.locator("input[data-path='include.all[0].value']")
    error = frame.locator("[data-error-for='include.all[0].value']")
    expect(value).to_have_value("19.99")
    expect(frame.locator("#live-count")).not_to_have_text("—")
    # A negative amount
    value.fill("-5")
    expect(error).to_have_text("Enter an amount of 0 or more.")
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(frame.locator("#live-status")).to_contain_text("Enter an amount of 0 or more.")
    # Cents past the second decimal
    value.fill("12.345")
    expect(error).to_have_text("Enter an amount with at most 2 decimals, like 19.99.")
    # Saved anyway: refused, the banner points at the rules, and no path or JSON reaches the page
    frame.fill("#setting-name", "Big spenders")
    frame.locator("[data-action='save']").first.click()
    banner = frame.locator("#save-banner")
    expect(banner).to_contain_text("Fix the problems marked in the rules; nothing was saved.")
    expect(error).to_have_text("Enter an amount with at most 2 decimals, like 19.99.")
    text = frame.inner_text("main")
    for jargon in ("must be", "JSON", "include.all", "decimal places"):
        assert jargon not in text
    screenshot(page, "builder-amount-error")
    assert not Segment.objects.filter(shop=shop).exists()


def test_rules_selecting_an_existing_segments_customers_are_flagged(page, seeded):
    shop, admin_url = seeded
    three = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "gte", "value": 3}]}}
    two = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "gte", "value": 2}]}}
    regulars = segment_create(shop=shop, name="Regulars", rules=three)
    repeat = segment_create(shop=shop, name="Repeat buyers", rules=two)
    expected = segment_dry_run(shop=shop, rules=three)["overlaps"]
    assert [(o["name"], o["same"]) for o in expected][:1] == [("Regulars", True)]
    share = next(o for o in expected if o["segment"] == repeat.pk)["share"]     # all of them, and more
    assert share == 1.0
    frame = open_builder(page, admin_url, "admin/segments/new")
    overlap = frame.locator("#overlap")
    # Given rules that overlap nothing (customers with at most one order)
    frame.select_option("select[data-path='include.all[0].op']", "lte")
    expect(frame.locator("#live-status")).to_contain_text("customers match")
    lone = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "lte", "value": 1}]}}
    assert segment_dry_run(shop=shop, rules=lone)["overlaps"] == []
    expect(overlap).to_be_hidden()
    # When the rules become Regulars' own
    frame.select_option("select[data-path='include.all[0].op']", "gte")
    frame.fill("input[data-path='include.all[0].value']", "3")
    # Then the page says which segments already hold these customers
    expect(overlap).to_be_visible()
    expect(overlap.locator(f"[data-overlap='{regulars.pk}']")).to_have_text(
        "These rules select the same customers as Regulars.")
    expect(overlap.locator(f"[data-overlap='{repeat.pk}']")).to_have_text(
        "100% of these customers are already in Repeat buyers.")
    screenshot(page, "builder-overlap")


def test_a_browsing_metric_is_offered_in_its_family_and_previews(page, seeded):
    shop, admin_url = seeded
    frame = open_builder(page, admin_url, "admin/segments/new")
    picker = frame.locator("select[data-path='include.all[0].metric']")
    expect(picker.locator("optgroup[label='Browsing (storefront)'] option[value='product_views']")).to_have_count(1)
    picker.select_option("product_views")
    frame.fill("input[data-path='include.all[0].value']", "0")
    expected = segment_dry_run(shop=shop, rules={"version": 1, "include": {"all": [
        {"metric": "product_views", "op": "gte", "value": 0}]}})
    expect(frame.locator("#live-count")).to_have_text(f"{expected['size']:,}")
    screenshot(page, "builder-browsing")
