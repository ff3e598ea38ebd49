"""Pages are fetched as the embedded admin fetches them: `?id_token=<session token>` from devstore,
for a shop installed through the real OAuth flow. Segments, members and history are written with
the services and models the app itself writes them with."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from segments.membership.definitions import segment_create
from segments.membership.models import Membership, MembershipEvent, Segment
from segments.mirror.models import Customer
from segments.shops.models import Shop

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}


def session_token(devstore, shop: Shop | str, api_key: str) -> str:
    domain = shop if isinstance(shop, str) else shop.domain
    return devstore.control("GET", f"/shops/{domain}/session-token/{api_key}")["token"]


@pytest.fixture
def get_page(client, devstore, settings):
    """GET an embedded page as `shop` (a fresh session token each call)."""

    def get(shop: Shop, path: str, **params):
        token = session_token(devstore, shop, settings.SHOPIFY_API_KEY)
        return client.get(f"{path}?" + urlencode({"id_token": token, "shop": shop.domain, **params}))

    return get


@pytest.fixture
def other_shop(client, devstore, settings, django_capture_on_commit_callbacks) -> Shop:
    from tests.conftest import run_install

    domain = devstore.create_shop()
    with django_capture_on_commit_callbacks(execute=True):
        run_install(client, devstore, domain, settings.SHOPIFY_API_KEY)
    return Shop.objects.get(domain=domain)


def make_segment(shop: Shop, name: str = "Buyers", rules: dict = BUYERS, **fields) -> Segment:
    """A segment as the API creates it (version 1 with its summary), marked computed."""
    segment = segment_create(shop=shop, name=name, rules=rules, author="staff-1", reason="first cut", **fields)
    Segment.objects.filter(pk=segment.pk).update(computed_version=1, last_computed_at=timezone.now())
    segment.refresh_from_db()
    return segment


def add_members(segment: Segment, people: list[tuple[str, str, str]], *, start_id: int = 1000,
                days_ago: int = 3) -> list[Customer]:
    """Customers (first, last, email) in the mirror and in the segment, each with an entry event."""
    at = timezone.now() - dt.timedelta(days=days_ago)
    customers = []
    for i, (first, last, email) in enumerate(people):
        customer = Customer.objects.create(shop=segment.shop, shopify_id=start_id + i, first_name=first,
                                           last_name=last, email=email)
        Membership.objects.create(shop=segment.shop, segment=segment, customer=customer, entered_at=at, version=1)
        MembershipEvent.objects.create(shop=segment.shop, segment=segment, customer=customer, entered=True, at=at,
                                       version=1, trigger="definition")
        customers.append(customer)
    Segment.objects.filter(pk=segment.pk).update(member_count=len(people))
    segment.refresh_from_db()
    return customers
