"""The embedded admin's pages in real Chromium inside devstore's Shopify admin, on a shop seeded with
300 customers whose history the install backfilled and with segments created from templates (their
membership computed by the engine): every page renders (a screenshot each), the merchant writes a
playbook and copies a theme snippet, retries a failed tag change, and moves around by keyboard."""
from __future__ import annotations


import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from segments.experiences.models import Playbook
from segments.experiences.publish import shop_storefront_publish
from segments.membership.definitions import segment_create
from segments.membership.models import Membership, Segment, TagChange
from segments.metrics.models import CustomerMetrics
from segments.mirror.models import BackfillStatus, Customer
from segments.shops.models import Shop
from segments.tags.models import TagResult
from segments.tags.snippets import segment_snippet
from tests.browser.conftest import app_frame, screenshot
from tests.conftest import install_live
from tests.segments.mirror.test_backfill import run_backfill
from tests.webhooks.test_worker import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 300
TEMPLATES = ("vip", "one_time_purchasers", "at_risk_lapsed")


@pytest.fixture
def seeded(devstore, live_server, settings):
    """An installed shop with its history backfilled, metrics built, and segments from templates whose
    membership the recompute (queued on commit, run in-process) has computed."""
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 0     # the bulk path has its own tests
    domain, admin_url = install_live(devstore, live_server, settings, customers=CUSTOMERS)
    shop = Shop.objects.get(domain=domain)
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    assert wait_until(lambda: CustomerMetrics.objects.filter(shop=shop).count() == CUSTOMERS)
    from segments.engine.templates import TEMPLATE_BY_KEY, template_document

    for key in TEMPLATES:
        segment_create(shop=shop, name=TEMPLATE_BY_KEY[key].name, rules=template_document(key), template=key,
                       author="staff-1", reason="from the template")
    assert wait_until(lambda: not any(s.computing for s in Segment.objects.filter(shop=shop)))
    assert Membership.objects.filter(shop=shop).exists()
    return shop, admin_url.split("?")[0].rstrip("/")


def open_page(page, admin_url: str, path: str):
    """devstore's admin framing the app at `path` (one bounce for a fresh session token)."""
    page.goto(f"{admin_url}/{path}")
    return app_frame(page)


def biggest(shop: Shop) -> Segment:
    return Segment.objects.filter(shop=shop).order_by("-member_count", "pk").first()


def test_every_page_renders_with_the_shops_data(page, seeded):
    shop, admin_url = seeded
    segments = list(Segment.objects.filter(shop=shop).order_by("pk"))
    # Home: every segment in the index with its size and tag, the nav marking the page
    frame = open_page(page, admin_url, "admin/")
    expect(frame.locator("h1")).to_have_text("Segments")
    for segment in segments:
        row = frame.locator(f"tr[data-segment='{segment.pk}']")
        expect(row).to_contain_text(segment.name)
        expect(row).to_contain_text(f"{segment.member_count:,}")
        expect(row).to_contain_text(segment.tag)
    expect(frame.locator("nav [aria-current=page]")).to_have_text("Segments")
    screenshot(page, "page-home")

    # A segment: members linking to Shopify, "why" rendered from the API
    segment = biggest(shop)
    frame.click(f"tr[data-segment='{segment.pk}'] .name a")
    frame = app_frame(page)
    expect(frame.locator("h1")).to_have_text(segment.name)
    first = frame.locator("#members tbody tr").first
    customer = Customer.objects.get(pk=first.get_attribute("data-customer"))
    expect(first.locator("td.name a")).to_have_attribute(
        "href", f"{admin_url.split('/admin/')[0]}/admin/customers/{customer.shopify_id}")
    first.locator("button[data-why]").click()
    why = first.locator(".why")
    expect(why).to_contain_text("Matches the rules")
    expect(why.locator("li").first).to_contain_text("✓")
    expect(frame.locator("#versions-heading")).to_be_visible()
    expect(frame.locator("svg.chart")).to_be_visible()
    screenshot(page, "page-segment")

    for path, heading, name in (("admin/playbooks", "Playbooks", "page-playbooks"),
                                (f"admin/segments/{segment.pk}/playbook", f"Playbook: {segment.name}", "page-playbook"),
                                ("admin/theme", "Theme", "page-theme"), ("admin/settings", "Settings", "page-settings"),
                                ("admin/sync", "Sync & data", "page-sync"),
                                ("admin/compliance/", "Privacy requests", "page-compliance")):
        frame = open_page(page, admin_url, path)
        expect(frame.locator("h1")).to_have_text(heading)
        expect(frame.locator("#api-error")).to_be_hidden()
        screenshot(page, name)
    # Navigating by the top nav lands on the page with a fresh token (no error page)
    frame.click("nav >> text=Theme")
    frame = app_frame(page)
    expect(frame.locator("h1")).to_have_text("Theme")
    expect(frame.locator(".snippet")).to_have_count(len(segments))


def test_write_a_playbook(page, seeded):
    shop, admin_url = seeded
    segment = biggest(shop)
    frame = open_page(page, admin_url, f"admin/segments/{segment.pk}/playbook")
    expect(frame.locator("#unsaved")).to_be_visible()
    frame.fill("#goal", "Bring VIPs back before the holidays")
    frame.fill("#message", "Early access to the winter collection.")
    frame.check("input[name=channels][value=email]")
    frame.check("input[name=channels][value=sms]")
    frame.fill("#offer", "Free express shipping")
    frame.fill("#campaign_ideas", "Preview night\n\nHandwritten note\n")
    frame.fill("#cadence", "weekly, Tuesday morning")
    frame.fill("#frequency_cap", "3")
    frame.fill("#owner", "Dana")
    frame.select_option("#kpi", "repeat_rate")
    frame.click("button[type=submit]")
    expect(frame.locator("#save-status")).to_have_text("Saved")
    saved = Playbook.objects.get(segment=segment)
    assert (saved.goal, saved.channels, saved.campaign_ideas, saved.frequency_cap, saved.kpi) == (
        "Bring VIPs back before the holidays", ["email", "sms"], ["Preview night", "Handwritten note"], 3,
        "repeat_rate")
    screenshot(page, "journey-playbook-saved")

    # After a reload the form holds what was saved
    frame = open_page(page, admin_url, f"admin/segments/{segment.pk}/playbook")
    expect(frame.locator("#goal")).to_have_value("Bring VIPs back before the holidays")
    expect(frame.locator("input[name=channels][value=sms]")).to_be_checked()
    expect(frame.locator("input[name=channels][value=push]")).not_to_be_checked()
    expect(frame.locator("#campaign_ideas")).to_have_value("Preview night\nHandwritten note")
    expect(frame.locator("#frequency_cap")).to_have_value("3")
    expect(frame.locator("#kpi")).to_have_value("repeat_rate")
    expect(frame.locator("#unsaved")).to_have_count(0)

    # A bad value: the API's problem is shown beside the field, and nothing is saved
    frame.fill("#frequency_cap", "99")
    frame.fill("#owner", "Someone else")
    frame.click("button[type=submit]")
    error = frame.locator("#frequency_cap-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("from 1 to 50")
    expect(frame.locator("#frequency_cap")).to_have_attribute("aria-invalid", "true")
    expect(frame.locator("#save-status")).to_have_text("")
    saved.refresh_from_db()
    assert (saved.frequency_cap, saved.owner) == (3, "Dana")
    screenshot(page, "journey-playbook-error")


def test_pick_an_experience_and_a_members_code(page, seeded, devstore):
    shop, admin_url = seeded
    segment = biggest(shop)
    frame = open_page(page, admin_url, f"admin/segments/{segment.pk}/playbook")
    expect(frame.locator("fieldset[data-preset]:visible")).to_have_count(0)
    frame.select_option("#experience-preset", "cart_value")
    expect(frame.locator("fieldset[data-preset=cart_value]")).to_be_visible()
    frame.fill("#exp-cart_value-threshold", "75")
    frame.fill("#exp-cart_value-percent", "0")            # below the preset's bounds
    frame.click("button[type=submit]")
    expect(frame.locator("#experience-error")).to_contain_text("Discount below it (%) must be a number from 1 to 90")
    assert not Playbook.objects.filter(segment=segment).exists()

    frame.fill("#exp-cart_value-percent", "15")
    frame.fill("#offer_percent", "20")
    frame.click("button[type=submit]")
    expect(frame.locator("#save-status")).to_have_text("Saved")
    saved = Playbook.objects.get(segment=segment)
    assert (saved.experience["preset"], saved.experience["threshold"], saved.experience["percent"],
            saved.offer_percent) == ("cart_value", 75.0, 15, 20)
    assert shop_storefront_publish(shop_id=shop.pk) == ""       # what the worker's sweep does next

    frame = open_page(page, admin_url, f"admin/segments/{segment.pk}/playbook")
    expect(frame.locator("#experience-preset")).to_have_value("cart_value")
    expect(frame.locator("#exp-cart_value-threshold")).to_have_value("75")
    stem = segment.handle.upper()
    expect(frame.locator("#offers tbody tr")).to_have_count(3)
    for code in (f"{stem}-FREESHIP", f"{stem}-15OFF", f"{stem}-MEMBERS"):
        expect(frame.locator(f"#offers >> text={code}")).to_be_visible()
    expect(frame.locator("#theme-link")).to_have_attribute("href", re.compile(r"addAppBlockId=.+/segment-experience"))
    codes = sorted(c for d in devstore.control("GET", f"/shops/{shop.domain}/discounts")["discounts"] for c in d["codes"])
    assert codes == sorted((f"{stem}-FREESHIP", f"{stem}-15OFF", f"{stem}-MEMBERS"))
    frame.locator("#offers").scroll_into_view_if_needed()
    screenshot(page, "journey-playbook-experience")


def test_copy_a_theme_snippet(page, seeded, devstore):
    shop, admin_url = seeded
    # devstore's admin frames the app without `allow="clipboard-read"`, so the frame cannot read the
    # clipboard back; the admin document (devstore's origin) reads the same system clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=devstore.url)
    segment = Segment.objects.filter(shop=shop).order_by("name", "pk").first()
    frame = open_page(page, admin_url, "admin/theme")
    card = frame.locator(f".snippet[data-segment='{segment.pk}']")
    card.locator("button[data-copy]").click()
    expect(card.locator("button[data-copy]")).to_have_text("Copied")
    expect(frame.locator("#copy-status")).to_have_text("Copied to the clipboard")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == segment_snippet(segment=segment)
    screenshot(page, "journey-theme-copied")


def test_retry_a_failed_tag_change(page, seeded, devstore):
    shop, admin_url = seeded
    segment = biggest(shop)
    member = Membership.objects.filter(segment=segment, holdout=False).select_related("customer").first()
    tags = lambda: devstore.control("GET", f"/shops/{shop.domain}/customers/{member.customer.shopify_id}/tags")["tags"]  # noqa: E731
    # Given the tag was never written: Shopify refused it until tag sync gave up
    devstore.control("POST", f"/shops/{shop.domain}/customers/{member.customer.shopify_id}/tags",
                     json={"remove": [segment.tag]})
    TagChange.objects.filter(shop=shop, processed_at__isnull=True).update(processed_at=timezone.now(), result="noop")
    failed = TagChange.objects.create(shop=shop, customer=member.customer, tag=segment.tag, add=True,
                                      created_at=timezone.now(), segment=segment, version=segment.current_version,
                                      processed_at=timezone.now(), result=TagResult.FAILED, attempts=10,
                                      last_error="HTTP 503 from Shopify")
    assert segment.tag not in tags()
    frame = open_page(page, admin_url, "admin/sync")
    row = frame.locator(f"tr[data-change='{failed.pk}']")
    expect(row).to_contain_text("HTTP 503 from Shopify")
    screenshot(page, "journey-sync-failed")
    # When the merchant retries it
    row.locator("button[data-retry]").click()
    expect(frame.locator("#retry-status")).to_contain_text("1 change queued again")
    expect(row).to_have_count(0)
    # Then the change is due again and tag sync writes the tag to Shopify
    assert wait_until(lambda: segment.tag in tags())
    failed.refresh_from_db()
    assert failed.attempts == 0 or failed.result == TagResult.APPLIED or failed.processed_at is not None


def test_keyboard_reaches_the_nav_and_a_form_with_a_visible_focus_ring(page, seeded):
    shop, admin_url = seeded
    frame = open_page(page, admin_url, "admin/settings")
    focused = "(() => { const el = document.activeElement; const s = getComputedStyle(el);" \
              " return {tag: el.tagName, id: el.id, text: el.textContent.trim(), name: el.name || '', cls: el.className," \
              " outline: s.outlineStyle, width: parseFloat(s.outlineWidth), top: el.getBoundingClientRect().top}; })()"
    frame.click(".app-name")                       # focus starts just before the nav
    labels = [a.inner_text() for a in frame.locator("nav.app-bar a, .topnav a").all()]
    for label in labels:
        page.keyboard.press("Tab")
        state = frame.evaluate(focused)
        assert state["text"] == label
        assert state["outline"] != "none" and state["width"] >= 2, state
    # Back before the nav: the skip link shows itself and jumps to the content
    for _ in labels[1:]:
        page.keyboard.press("Shift+Tab")
    assert frame.evaluate(focused)["text"] == labels[0]
    page.keyboard.press("Shift+Tab")
    state = frame.evaluate(focused)
    assert state["cls"] == "skip-link" and state["top"] >= 0
    page.keyboard.press("Enter")
    assert frame.evaluate("document.activeElement.id") == "main"
    # Through the settings form in order, every field reachable
    reached = []
    while "Save settings" not in reached and len(reached) < 15:
        page.keyboard.press("Tab")
        state = frame.evaluate(focused)
        reached.append(state["id"] or state["name"] or state["text"])
        assert state["outline"] != "none" and state["width"] >= 2, (state, reached)
    for field in ("tag_prefix", "holdout_tag", "drift_policy", "tag_metafield", "recompute_hour",
                  "checkout_abandon_minutes", "payload_retention_days"):
        assert field in reached, reached
    screenshot(page, "keyboard-settings")
