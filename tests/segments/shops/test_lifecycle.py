"""End to end over HTTP: install (with the consent page) -> token -> subscriptions -> home,
then refresh, uninstall (tokens revoked, jobs stop), reinstall. Nothing secret reaches the logs."""
import logging
from urllib.parse import urlencode

import pytest

from segments.shops.models import Shop, ShopStatus
from segments.shops.tokens import ShopUnavailable, with_shop_client
from tests.conftest import local

pytestmark = pytest.mark.django_db

SHOP_NAME = "{ shop { name } }"


@pytest.fixture
def consent_required(devstore_server):
    devstore_server.app.config.auto_approve = False
    yield
    devstore_server.app.config.auto_approve = True


def install_with_consent(client, devstore, shop, api_key):
    click = devstore.http.get(f"{devstore.url}/shops/{shop}/admin/_install/{api_key}")
    entry = client.get(local(click.headers["Location"]))
    consent = devstore.http.get(entry["Location"])
    assert consent.status_code == 200 and 'id="install"' in consent.text
    approve = consent.text.split('id="install" href="')[1].split('"')[0].replace("&amp;", "&")
    approved = devstore.http.get(f"{devstore.url}/shops/{shop}/admin/oauth/authorize{approve}")
    assert approved.status_code == 302
    return client.get(local(approved.headers["Location"]))


def test_install_refresh_uninstall_reinstall(client, devstore, settings, consent_required, caplog,
                                             django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    domain = devstore.create_shop()
    key = settings.SHOPIFY_API_KEY

    with django_capture_on_commit_callbacks(execute=True):
        response = install_with_consent(client, devstore, domain, key)
    assert response.status_code == 302
    shop = Shop.objects.get(domain=domain)
    assert len(devstore.control("GET", f"/shops/{domain}/webhooks")["subscriptions"]) > 0
    token = devstore.control("GET", f"/shops/{domain}/session-token/{key}")["token"]
    home = client.get("/admin/?" + urlencode({"id_token": token}))
    assert home.status_code == 200 and domain in home.content.decode()
    secrets_seen = {shop.access_token, shop.refresh_token}

    # refresh: devstore expires the token; the next call refreshes and rotates both tokens
    devstore.control("POST", f"/shops/{domain}/tokens/{key}/expire")
    assert with_shop_client(shop_id=shop.pk, call=lambda c: c.graphql(SHOP_NAME).data)["shop"]["name"]
    shop.refresh_from_db()
    assert {shop.access_token, shop.refresh_token}.isdisjoint(secrets_seen)
    secrets_seen |= {shop.access_token, shop.refresh_token}

    # uninstall in Shopify revokes everything; until app/uninstalled arrives, a call fails cleanly
    devstore.control("POST", f"/shops/{domain}/uninstall/{key}")
    with pytest.raises(ShopUnavailable):
        with_shop_client(shop_id=shop.pk, call=lambda c: c.graphql(SHOP_NAME).data)
    shop.refresh_from_db()
    assert shop.status == ShopStatus.NEEDS_REAUTH

    # reinstall
    with django_capture_on_commit_callbacks(execute=True):
        assert install_with_consent(client, devstore, domain, key).status_code == 302
    shop.refresh_from_db()
    assert shop.status == ShopStatus.INSTALLED
    assert with_shop_client(shop_id=shop.pk, call=lambda c: c.graphql(SHOP_NAME).data)["shop"]["name"]
    secrets_seen |= {shop.access_token, shop.refresh_token, settings.SHOPIFY_API_SECRET}

    for secret in secrets_seen:
        assert secret not in caplog.text
    assert "hmac=" not in caplog.text and "id_token=" not in caplog.text
