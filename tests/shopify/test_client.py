"""ShopClient tells the operator when Shopify answers in another API version than the one asked
for, or marks a call deprecated (X-Shopify-API-Deprecated-Reason)."""
import logging

import httpx
import pytest

from shopseg.shopify import client as client_module
from shopseg.shopify.client import ShopClient


def shop_client(headers: dict) -> ShopClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/admin/api/2026-10/graphql.json"
        return httpx.Response(200, json={"data": {"shop": {"id": "gid://shopify/Shop/1"}}}, headers=headers)

    return ShopClient(base_url="https://a.myshopify.com", token="shpat_secret", api_version="2026-10",
                      transport=httpx.MockTransport(answer))


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(client_module, "_api_warned", {})


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_an_answer_in_the_version_asked_for_is_quiet(caplog):
    with caplog.at_level(logging.WARNING):
        shop_client({"X-Shopify-API-Version": "2026-10"}).graphql("{ shop { id } }")
    assert warnings(caplog) == []


def test_another_version_or_a_deprecation_is_a_warning_once(caplog):
    with caplog.at_level(logging.WARNING):
        fallen = shop_client({"X-Shopify-API-Version": "2027-01"})
        for _ in range(3):
            assert fallen.graphql("{ shop { id } }").data == {"shop": {"id": "gid://shopify/Shop/1"}}
        shop_client({"X-Shopify-API-Version": "2026-10",
                     "X-Shopify-API-Deprecated-Reason": "https://shopify.dev/changelog/x"}).graphql("{ shop { id } }")
    found = warnings(caplog)
    assert len(found) == 2
    assert "2027-01" in found[0] and "2026-10" in found[0] and "a.myshopify.com" in found[0]
    assert "https://shopify.dev/changelog/x" in found[1]
    assert not any("shpat_secret" in w for w in found)
