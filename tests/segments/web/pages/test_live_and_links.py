"""The home page's live regions refresh from a fragment authenticated like the API (never from the
signed URL Shopify opened the app with), and links to a customer lead into the shop's admin."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from segments.membership.models import TagChange
from segments.mirror.models import BackfillStatus, ShopSync
from segments.shops.admin_api import admin_url
from tests.segments.web.pages.conftest import add_members, make_segment, session_token
from tests.segments.web.test_embedded import embedded_query

pytestmark = pytest.mark.django_db

LIVE = "/admin/_live/home"


def bearer(devstore, shop, settings) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {session_token(devstore, shop, settings.SHOPIFY_API_KEY)}"}


def history_imported(*shops) -> None:
    ShopSync.objects.filter(shop__in=shops).update(backfill_status=BackfillStatus.DONE, backfill_finished_at=timezone.now())


def waiting_change(shop) -> TagChange:
    """The shop's history imported, and one tag change waiting to be written."""
    history_imported(shop)
    segment = make_segment(shop)
    customer = add_members(segment, [("Ada", "Lovelace", "ada@example.com")])[0]
    return TagChange.objects.create(shop=shop, customer=customer, tag="seg:buyers", add=True,
                                    created_at=timezone.now(), segment=segment)


class TestHomeRefresh:
    def test_the_signed_launch_page_names_the_fragment_its_live_regions_refresh_from(
            self, client, devstore, settings, installed_shop):
        waiting_change(installed_shop)
        token = session_token(devstore, installed_shop, settings.SHOPIFY_API_KEY)
        html = client.get("/?" + embedded_query(settings, installed_shop.domain, token)).content.decode()
        assert re.search(rf'id="jobs" data-live="{LIVE}" data-running="true"', html)
        assert re.search(rf'id="history" data-live="{LIVE}"', html)

    def test_the_fragment_shows_progress_while_changes_wait_and_clears_once_they_are_written(
            self, client, devstore, settings, installed_shop):
        change = waiting_change(installed_shop)
        response = client.get(LIVE, **bearer(devstore, installed_shop, settings))
        assert response.status_code == 200
        html = response.content.decode()
        assert re.search(r'id="jobs" data-live="[^"]*" data-running="true"', html)
        assert "1 tag change for 1 customer waiting" in html and 'id="history"' in html
        assert "<nav" not in html and "app.js" not in html                 # the regions alone
        # once tag sync wrote it, the same fragment says nothing is running
        TagChange.objects.filter(pk=change.pk).update(processed_at=timezone.now(), result="applied")
        html = client.get(LIVE, **bearer(devstore, installed_shop, settings)).content.decode()
        assert re.search(r'id="jobs" data-live="[^"]*" data-running="false"[^>]*hidden', html)
        assert "Writing tags to Shopify" not in html

    def test_without_a_session_token_in_authorization_the_fragment_is_refused_and_shows_nothing(
            self, client, devstore, settings, installed_shop):
        waiting_change(installed_shop)
        token = session_token(devstore, installed_shop, settings.SHOPIFY_API_KEY)
        for response in (client.get(LIVE),
                         client.get(f"{LIVE}?" + urlencode({"id_token": token})),   # never from the URL
                         client.get(LIVE, HTTP_AUTHORIZATION="Bearer not-a-token")):
            assert response.status_code == 401
            assert response.content == b""

    def test_another_shops_token_shows_that_shops_progress_only(self, client, devstore, settings, installed_shop,
                                                                  other_shop):
        waiting_change(installed_shop)
        history_imported(other_shop)
        html = client.get(LIVE, **bearer(devstore, other_shop, settings)).content.decode()
        assert "Writing tags to Shopify" not in html and 'data-running="false"' in html


class TestCustomerLinks:
    def test_on_shopify_a_customer_is_a_page_of_admin_shopify_com(self, settings):
        settings.SHOPIFY_SHOP_BASE_URL = "https://{shop}"
        assert admin_url("cool-shop.myshopify.com", "customers/42") == \
            "https://admin.shopify.com/store/cool-shop/customers/42"
        assert admin_url("cool-shop.myshopify.com") == "https://admin.shopify.com/store/cool-shop"

    def test_under_devstore_a_customer_is_a_page_of_devstores_admin(self, devstore):
        assert admin_url("cool-shop.myshopify.com", "customers/42") == \
            f"{devstore.url}/shops/cool-shop.myshopify.com/admin/customers/42"

    def test_member_links_on_the_segment_page_lead_into_the_shops_admin(self, get_page, devstore, installed_shop):
        segment = make_segment(installed_shop)
        customer = add_members(segment, [("Ada", "Lovelace", "ada@example.com")])[0]
        html = get_page(installed_shop, f"/admin/segments/{segment.pk}").content.decode()
        expected = f"{devstore.url}/shops/{installed_shop.domain}/admin/customers/{customer.shopify_id}"
        assert f'href="{expected}" target="_top"' in html
        assert f"https://{installed_shop.domain}/admin/customers/" not in html

    def test_devstores_admin_shows_the_customer_a_link_leads_to(self, devstore):
        shop = devstore.create_shop()
        devstore.control("POST", f"/shops/{shop}/seed", json={"customers": 2, "seed": 3})
        row = devstore.store.conn().execute("SELECT id, first_name, last_name, email FROM customers WHERE shop = ? "
                                            "ORDER BY id LIMIT 1", (shop,)).fetchone()
        devstore.control("POST", f"/shops/{shop}/customers/{row['id']}/tags", json={"add": ["seg:vip"]})
        page = devstore.http.get(f"{devstore.url}/shops/{shop}/admin/customers/{row['id']}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert row["email"] in page.text and "seg:vip" in page.text
        assert f"{row['first_name']} {row['last_name']}".strip() in page.text
        # a customer the shop does not have is a 404, not someone else's page
        assert devstore.http.get(f"{devstore.url}/shops/{shop}/admin/customers/999999999").status_code == 404
