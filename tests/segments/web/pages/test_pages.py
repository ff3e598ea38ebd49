"""Every embedded page: renders for the shop, bounces without a token, hides other shops' data,
and says so honestly when there is nothing to show."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from segments.experiences.models import Playbook
from segments.experiences.playbooks import playbook_update
from segments.measurement.models import SegmentKpiSnapshot
from segments.membership.definitions import segment_update
from segments.membership.models import Segment, SegmentStatus, TagChange
from segments.mirror.models import ComplianceKind, ComplianceRequest
from segments.shops.calendar import shop_today
from segments.tags.models import TagAudit, TagResult
from segments.web.pages.charts import sparkline
from tests.segments.web.pages.conftest import add_members, make_segment

pytestmark = pytest.mark.django_db

PAGES = ["/admin/", "/admin/playbooks", "/admin/theme", "/admin/settings", "/admin/sync", "/admin/compliance/"]


@pytest.mark.parametrize("path", PAGES + ["/admin/segments/1", "/admin/segments/1/playbook"])
def test_without_a_token_every_page_bounces(client, path):
    response = client.get(f"{path}?shop=demo.myshopify.com")
    assert response.status_code == 200
    html = response.content.decode()
    assert "segments/bounce.js" in html and "<nav" not in html


@pytest.mark.parametrize("path, current", [
    ("/admin/", "Segments"), ("/admin/playbooks", "Playbooks"), ("/admin/theme", "Theme"),
    ("/admin/settings", "Settings"), ("/admin/sync", "Sync &amp; data"), ("/admin/compliance/", "Sync &amp; data"),
    ("/admin/measurement", "Measurement"), ("/admin/migration", "Measurement"), ("/admin/review", "Measurement"),
])
def test_each_page_renders_in_the_frame_with_its_nav_item_current(get_page, installed_shop, path, current):
    response = get_page(installed_shop, path)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(rf'aria-current="page">{re.escape(current)}</a>', html)
    assert html.count('aria-current="page"') == 1
    assert 'href="#main"' in html and 'id="main"' in html          # skip link and its target
    assert "segments/app.js" in html


def test_empty_states(get_page, installed_shop):
    assert "No segments yet" in get_page(installed_shop, "/admin/").content.decode()
    assert "No segments, so no playbooks yet" in get_page(installed_shop, "/admin/playbooks").content.decode()
    assert "No segments to show in your theme yet" in get_page(installed_shop, "/admin/theme").content.decode()
    sync = get_page(installed_shop, "/admin/sync").content.decode()
    assert "No failed tag changes" in sync and "No tags written yet" in sync and "No privacy requests yet" in sync


class TestHome:
    def test_lists_segments_with_size_trend_share_and_tag(self, get_page, installed_shop):
        segment = make_segment(installed_shop, "Big spenders")
        add_members(segment, [("Ada", "Lovelace", "ada@example.com"), ("Alan", "Turing", "alan@example.com")])
        today = shop_today(installed_shop)
        for back, members in ((2, 10), (1, 12), (0, 15)):
            SegmentKpiSnapshot.objects.create(shop=installed_shop, segment=segment,
                                              day=today - dt.timedelta(days=back), members=members,
                                              revenue=Decimal("25.00"), store_revenue=Decimal("100.00"))
        # outside the 30-day window: neither in the trend nor in the share
        SegmentKpiSnapshot.objects.create(shop=installed_shop, segment=segment, day=today - dt.timedelta(days=40),
                                          members=99, revenue=Decimal("100"), store_revenue=Decimal("100"))
        quiet = make_segment(installed_shop, "Quiet ones")
        html = get_page(installed_shop, "/admin/").content.decode()
        assert "Big spenders" in html and "Quiet ones" in html
        assert f'href="/admin/segments/{segment.pk}?shop=' in html
        assert f'points="{sparkline([10, 12, 15]).points}"' in html and 'points="1.0,27.0 60.0,' in html
        assert "Members over the last 3 days: 10 to 15" in html
        assert "25%" in html                                       # 75 of 300
        assert "seg:big-spenders" in html
        row = re.search(rf'<tr data-segment="{quiet.pk}">(.*?)</tr>', html, re.S).group(1)
        assert "No history yet" in row and "—" in row

    def test_status_badges(self, get_page, installed_shop):
        calculating = make_segment(installed_shop, "Calculating one")
        Segment.objects.filter(pk=calculating.pk).update(computed_version=None)
        paused = make_segment(installed_shop, "Paused one", status=SegmentStatus.PAUSED)
        broken = make_segment(installed_shop, "Broken one")
        Segment.objects.filter(pk=broken.pk).update(compute_error="statement timeout")
        html = get_page(installed_shop, "/admin/").content.decode()

        def badges(segment):
            row = re.search(rf'<tr data-segment="{segment.pk}">(.*?)</tr>', html, re.S).group(1)
            return re.findall(r'class="badge badge-(\w+)">([^<]+)<', row)

        assert badges(calculating) == [("info", "Calculating")]
        assert badges(paused) == [("attention", "Paused")]
        assert ("critical", "Error") in badges(broken)
        assert "1 segment could not be calculated" in html and "Needs attention" in html

    def test_sync_errors_show_on_the_segment_and_in_needs_attention(self, get_page, installed_shop):
        segment = make_segment(installed_shop)
        customer = add_members(segment, [("Ada", "Lovelace", "ada@example.com")])[0]
        TagChange.objects.create(shop=installed_shop, customer=customer, tag="seg:buyers", add=True,
                                 created_at=timezone.now(), segment=segment, processed_at=timezone.now(),
                                 result=TagResult.FAILED, attempts=10, last_error="HTTP 502")
        html = get_page(installed_shop, "/admin/").content.decode()
        assert '<span class="badge badge-critical">Sync errors</span>' in html
        assert "1 tag change failed" in html and "Open Sync &amp; data" in html

    def test_tag_sync_progress_is_a_live_region_while_changes_wait(self, get_page, installed_shop):
        segment = make_segment(installed_shop)
        customer = add_members(segment, [("Ada", "Lovelace", "ada@example.com")])[0]
        assert "Writing tags to Shopify" not in get_page(installed_shop, "/admin/").content.decode()
        TagChange.objects.create(shop=installed_shop, customer=customer, tag="seg:buyers", add=True,
                                 created_at=timezone.now(), segment=segment)
        html = get_page(installed_shop, "/admin/").content.decode()
        assert re.search(r'id="jobs" data-live="/admin/_live/home" data-running="true"', html)
        assert "Writing tags to Shopify" in html and "1 tag change for 1 customer waiting" in html

    def test_another_shops_segments_are_not_listed(self, get_page, installed_shop, other_shop):
        make_segment(other_shop, "Their segment")
        html = get_page(installed_shop, "/admin/").content.decode()
        assert "Their segment" not in html and "No segments yet" in html


class TestSegmentDetail:
    def test_header_members_links_versions_and_movement(self, get_page, devstore, installed_shop):
        segment = make_segment(installed_shop, "Buyers")
        customers = add_members(segment, [("Ada", "Lovelace", "ada@example.com"),
                                          ("Alan", "Turing", "alan@example.com")])
        segment_update(segment=segment, author="staff-2", reason="only repeat buyers",
                       rules={"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 2}})
        response = get_page(installed_shop, f"/admin/segments/{segment.pk}")
        assert response.status_code == 200
        html = response.content.decode()
        assert "<h1>Buyers</h1>" in html and "seg:buyers" in html
        admin = f"{devstore.url}/shops/{installed_shop.domain}/admin"      # the shop's admin (devstore here)
        assert f'href="{admin}/customers/{customers[0].shopify_id}" target="_top"' in html
        assert "Ada Lovelace" in html and "alan@example.com" in html
        assert f"/api/segments/{segment.pk}/why/{customers[0].pk}" in html
        assert "Version 2" in html and "only repeat buyers" in html and "→" in html     # the readable diff
        assert "2 entries and 0 exits" in html
        assert f'href="/admin/segments/{segment.pk}/playbook?shop=' in html

    def test_search_by_name_or_email_and_keyset_pages(self, get_page, installed_shop):
        segment = make_segment(installed_shop)
        people = [(f"Person{i:02d}", "Smith" if i % 2 else "Jones", f"p{i:02d}@example.com") for i in range(30)]
        customers = add_members(segment, people)
        first = get_page(installed_shop, f"/admin/segments/{segment.pk}").content.decode()
        assert first.count("data-customer=") == 25
        next_after = re.search(r"after=(\d+)", first).group(1)
        assert int(next_after) == customers[24].pk
        second = get_page(installed_shop, f"/admin/segments/{segment.pk}", after=next_after).content.decode()
        assert second.count("data-customer=") == 5 and "Person29" in second and "Person00" not in second
        found = get_page(installed_shop, f"/admin/segments/{segment.pk}", q="person03 smith").content.decode()
        assert found.count("data-customer=") == 1 and "Person03" in found
        by_email = get_page(installed_shop, f"/admin/segments/{segment.pk}", q="P04@EXAMPLE").content.decode()
        assert by_email.count("data-customer=") == 1 and "p04@example.com" in by_email
        none = get_page(installed_shop, f"/admin/segments/{segment.pk}", q="nobody").content.decode()
        assert "data-customer=" not in none and "No members match" in none

    def test_empty_segment(self, get_page, installed_shop):
        segment = make_segment(installed_shop)
        html = get_page(installed_shop, f"/admin/segments/{segment.pk}").content.decode()
        assert "No members right now" in html and "No entries or exits in the last 30 days" in html

    def test_another_shops_segment_is_404(self, get_page, installed_shop, other_shop):
        theirs = make_segment(other_shop, "Theirs")
        add_members(theirs, [("Eve", "Secret", "eve@example.com")])
        for path in (f"/admin/segments/{theirs.pk}", f"/admin/segments/{theirs.pk}/playbook"):
            response = get_page(installed_shop, path)
            assert response.status_code == 404
            assert b"Eve" not in response.content and b"Theirs" not in response.content
        assert get_page(installed_shop, "/admin/segments/999999").status_code == 404


class TestPlaybooks:
    def test_form_shows_saved_values(self, get_page, installed_shop):
        segment = make_segment(installed_shop, "Lapsed")
        playbook_update(segment=segment, author="staff-1", changes={
            "goal": "Win them back", "channels": ["email", "sms"], "campaign_ideas": ["Free shipping", "Survey"],
            "frequency_cap": 2, "owner": "Dana", "kpi": "repeat_rate"})
        html = get_page(installed_shop, f"/admin/segments/{segment.pk}/playbook").content.decode()
        assert 'value="Win them back"' in html and 'value="Dana"' in html and 'value="2"' in html
        assert re.search(r'value="email" checked', html) and re.search(r'value="sms" checked', html)
        assert not re.search(r'value="push" checked', html)
        assert '<option value="repeat_rate" selected>' in html
        assert "Free shipping\nSurvey</textarea>" in html
        assert f"/api/segments/{segment.pk}/playbook.md" in html and "No playbook yet" not in html

    def test_unwritten_playbook_and_the_list(self, get_page, installed_shop):
        written = make_segment(installed_shop, "Written")
        playbook_update(segment=written, author="x", changes={"goal": "Grow AOV", "owner": "Sam"})
        unwritten = make_segment(installed_shop, "Unwritten")
        html = get_page(installed_shop, f"/admin/segments/{unwritten.pk}/playbook").content.decode()
        assert "No playbook yet" in html
        assert not Playbook.objects.filter(segment=unwritten).exists()        # looking saves nothing
        listing = get_page(installed_shop, "/admin/playbooks").content.decode()
        assert "Grow AOV" in listing and "Sam" in listing
        row = re.search(rf'<tr data-segment="{unwritten.pk}">(.*?)</tr>', listing, re.S).group(1)
        assert "Not written" in row


def test_theme_page_shows_each_snippet_and_the_naming_contract(get_page, installed_shop):
    from segments.tags.snippets import segment_snippet

    segment = make_segment(installed_shop, "VIP")
    make_segment(installed_shop, "Gone", status=SegmentStatus.ARCHIVED)
    html = get_page(installed_shop, "/admin/theme").content.decode()
    from django.utils.html import escape
    assert escape(segment_snippet(segment=segment)) in html
    assert 'data-copy="snippet-' in html and "Gone" not in html
    assert "Holdout (control group) members get <strong>no</strong> segment tag" in html


def test_settings_page_shows_current_values(get_page, installed_shop):
    installed_shop.tag_prefix, installed_shop.recompute_hour, installed_shop.drift_policy = "cust:", 5, "report"
    installed_shop.save()
    html = get_page(installed_shop, "/admin/settings").content.decode()
    assert 'id="tag_prefix" name="tag_prefix" data-path="tag_prefix" maxlength="40" value="cust:"' in html
    assert '<option value="5" selected>05:00</option>' in html
    assert re.search(r'value="report" checked', html)
    assert "Saving rewrites tags on every tagged customer" in html
    assert installed_shop.iana_timezone in html


def test_sync_page_lists_failures_audit_and_privacy_of_this_shop_only(get_page, installed_shop, other_shop):
    segment = make_segment(installed_shop)
    customer = add_members(segment, [("Ada", "Lovelace", "ada@example.com")])[0]
    failed = TagChange.objects.create(shop=installed_shop, customer=customer, tag="seg:buyers", add=True,
                                      created_at=timezone.now(), segment=segment, processed_at=timezone.now(),
                                      result=TagResult.FAILED, attempts=10, last_error="HTTP 502 from Shopify")
    TagAudit.objects.create(shop=installed_shop, customer=customer, customer_shopify_id=customer.shopify_id,
                            tag="seg:buyers", add=True, source="membership", result="applied")
    theirs = make_segment(other_shop, "Theirs")
    their_customer = add_members(theirs, [("Eve", "Secret", "eve@example.com")], start_id=5000)[0]
    TagChange.objects.create(shop=other_shop, customer=their_customer, tag="seg:theirs-secret", add=True,
                             created_at=timezone.now(), segment=theirs, processed_at=timezone.now(),
                             result=TagResult.FAILED, attempts=10, last_error="other shop")
    ComplianceRequest.objects.create(shop_domain=installed_shop.domain, kind=ComplianceKind.DATA_REQUEST,
                                     customer_shopify_id=customer.shopify_id, completed_at=timezone.now(),
                                     export={"customer": {}})
    html = get_page(installed_shop, "/admin/sync").content.decode()
    assert f'data-change="{failed.pk}"' in html and "HTTP 502 from Shopify" in html
    assert 'id="retry-all"' in html and "/api/sync/retry" in html
    assert '<dd class="stat" data-count="failed">1</dd>' in html
    assert "theirs-secret" not in html and "other shop" not in html
    assert "Recent tag changes" in html and "applied" in html
    assert "Data request" in html and "/export.json?shop=" in html
