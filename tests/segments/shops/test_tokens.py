"""Expiring offline tokens: refreshed early, once, under a row lock; a refused refresh is visible."""
import threading

import pytest
from django.db import connection

from segments.shops.models import Shop, ShopStatus
from segments.shops.tokens import ShopUnavailable, shop_access_token, with_shop_client
from tests.conftest import run_install


def refresh_tokens_issued(devstore, shop):
    return devstore.store.conn().execute(
        "SELECT COUNT(*) FROM tokens WHERE shop = ? AND kind = 'refresh'", (shop,)).fetchone()[0]


@pytest.mark.django_db
def test_fresh_token_is_used_as_is(installed_shop):
    assert shop_access_token(shop_id=installed_shop.pk) == installed_shop.access_token


@pytest.mark.django_db
def test_expired_token_is_refreshed_before_a_call(installed_shop, devstore, settings):
    devstore.control("POST", f"/shops/{installed_shop.domain}/tokens/{settings.SHOPIFY_API_KEY}/expire")
    Shop.objects.filter(pk=installed_shop.pk).update(access_token_expires_at=installed_shop.installed_at)
    name = with_shop_client(shop_id=installed_shop.pk, call=lambda c: c.graphql("{ shop { name } }").data)
    assert name["shop"]["name"]
    fresh = Shop.objects.get(pk=installed_shop.pk)
    assert fresh.access_token != installed_shop.access_token
    assert fresh.refresh_token != installed_shop.refresh_token
    assert refresh_tokens_issued(devstore, installed_shop.domain) == 2


@pytest.mark.django_db
def test_a_401_triggers_one_refresh_then_succeeds(installed_shop, devstore, settings):
    # Shopify revoked/expired the token early although our expiry says it is fresh.
    devstore.control("POST", f"/shops/{installed_shop.domain}/tokens/{settings.SHOPIFY_API_KEY}/expire")
    data = with_shop_client(shop_id=installed_shop.pk, call=lambda c: c.graphql("{ shop { name } }").data)
    assert data["shop"]["name"]
    assert refresh_tokens_issued(devstore, installed_shop.domain) == 2


@pytest.mark.django_db
def test_refused_refresh_marks_the_shop_for_reauthorization(installed_shop, client):
    Shop.objects.filter(pk=installed_shop.pk).update(access_token_expires_at=installed_shop.installed_at,
                                                     refresh_token="shprt_not_a_real_token")
    with pytest.raises(ShopUnavailable):
        shop_access_token(shop_id=installed_shop.pk)
    shop = Shop.objects.get(pk=installed_shop.pk)
    assert shop.status == ShopStatus.NEEDS_REAUTH and "refresh" in shop.status_reason
    with pytest.raises(ShopUnavailable):
        shop_access_token(shop_id=installed_shop.pk)   # stays stopped; no second refresh attempt


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_spend_the_refresh_token_once(client, devstore, settings):
    domain = devstore.create_shop()
    run_install(client, devstore, domain, settings.SHOPIFY_API_KEY)
    shop = Shop.objects.get(domain=domain)
    Shop.objects.filter(pk=shop.pk).update(access_token_expires_at=shop.installed_at)
    results, errors = [], []

    def worker():
        try:
            results.append(shop_access_token(shop_id=shop.pk))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1                      # everyone got the same new token
    assert refresh_tokens_issued(devstore, domain) == 2  # the initial grant plus exactly one refresh
