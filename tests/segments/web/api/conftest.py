"""Fixtures for the JSON API: an installed devstore shop with six mirrored customers, a second shop
with its own, and a client that sends a real session token minted by devstore."""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from devstore import oauth
from segments.membership.models import ExclusiveGroup, Membership, MembershipEvent, Segment, SegmentVersion, TagChange
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer
from segments.shops.models import Shop
from tests.conftest import run_install
from tests.segments.engine.test_metrics_table import Mirror

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
REPEAT = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 2}}
BAD_RULES = {"version": 1, "include": {"all": [{"metric": "orders_count", "op": "gte", "value": "many"}]}}


class Api:
    """The Django test client with `Authorization: Bearer <session token>` on every call."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def _headers(self) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token is not None else {}

    def get(self, path: str, **params):
        return self.client.get(path, params, **self._headers())

    def post(self, path: str, body=None, *, raw: bytes | str | None = None, content_type="application/json"):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data, content_type=content_type, **self._headers())

    def patch(self, path: str, body=None, *, raw: bytes | str | None = None):
        data = raw if raw is not None else json.dumps(body)
        return self.client.patch(path, data, content_type="application/json", **self._headers())

    def put(self, path: str, body=None, *, raw: bytes | str | None = None):
        data = raw if raw is not None else json.dumps(body)
        return self.client.put(path, data, content_type="application/json", **self._headers())

    def delete(self, path: str, **params):
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        return self.client.delete(path + query, **self._headers())

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None):
        """Any method; a body (JSON or raw bytes) for the methods that take one."""
        if method in ("get", "delete"):
            return getattr(self, method)(path)
        return getattr(self, method)(path, body if raw is None else None, raw=raw)


def mint(devstore, domain: str, api_key: str, user_id: int = 1) -> str:
    return oauth.session_token(devstore.store, domain, api_key, user_id=user_id)


def stock(shop: Shop) -> dict[int, int]:
    """Six customers: 1 with one order, 2 and 3 with two, 4-6 with none. {shopify id: pk}."""
    m = Mirror(shop)
    pks = {sid: m.customer(sid) for sid in range(1, 7)}
    Customer.objects.filter(shop=shop, shopify_id=2).update(first_name="Ada", last_name="Lovelace")
    m.order(1, 10)
    m.order(2, 100)
    m.order(2, 90)
    m.order(3, 5)
    m.order(3, 200)
    customer_metrics_rebuild(shop=shop, now=timezone.now())
    return pks


@pytest.fixture
def shop(installed_shop) -> Shop:
    installed_shop.customer_pks = stock(installed_shop)
    return installed_shop


@pytest.fixture
def api(client, devstore, settings, shop) -> Api:
    return Api(client, mint(devstore, shop.domain, settings.SHOPIFY_API_KEY))


@pytest.fixture
def other(client, devstore, settings, django_capture_on_commit_callbacks):
    """A second installed shop with its own customers, and an Api with its token."""
    domain = devstore.create_shop()
    with django_capture_on_commit_callbacks(execute=True):
        assert run_install(client, devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
    shop = Shop.objects.get(domain=domain)
    shop.customer_pks = stock(shop)
    return shop, Api(client, mint(devstore, domain, settings.SHOPIFY_API_KEY))


def member_sids(segment_id: int) -> set[int]:
    return set(Membership.objects.filter(segment_id=segment_id).values_list("customer__shopify_id", flat=True))


def create(api: Api, capture, body: dict) -> dict:
    """POST /api/segments with the on-commit recompute run; the created segment."""
    with capture(execute=True):
        response = api.post("/api/segments", body)
    assert response.status_code == 201, response.content
    return response.json()


def counts() -> tuple[int, ...]:
    return (Segment.objects.count(), SegmentVersion.objects.count(), Membership.objects.count(),
            MembershipEvent.objects.count(), TagChange.objects.count(), ExclusiveGroup.objects.count())


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is our error shape with this status (and code); its error object."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
