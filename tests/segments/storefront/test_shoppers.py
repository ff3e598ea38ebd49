"""devstore's browsing shoppers reach the app as the pixel would send them: every batch is taken
(none refused), the personas show in the rollups (campaign landings with their UTM, carts, searches),
and signed-in visits join their customers."""
from __future__ import annotations

import pytest
from django.db.models import Sum

from segments.storefront.models import StorefrontEvent, Visitor, VisitorDay
from segments.storefront.rollup import visitor_days_rollup
from tests.conftest import install_live, settle

pytestmark = pytest.mark.django_db(transaction=True)


def test_browsing_visits_arrive_and_roll_up(devstore, live_server, settings):
    domain, _ = install_live(devstore, live_server, settings, customers=30)
    settle(devstore, domain)
    answer = devstore.control("POST", f"/shops/{domain}/shoppers", json={"visits": 60, "seed": 5})
    visits = answer["visits"]
    assert visits.get("refused", 0) == 0 and visits["pixels"] == 1
    assert sum(n for persona, n in visits.items() if persona not in ("refused", "pixels")) == 60
    while visitor_days_rollup():
        pass
    assert StorefrontEvent.objects.count() > 60
    days = VisitorDay.objects.all()
    totals = days.aggregate(views=Sum("product_views"), searches=Sum("searches"), carts=Sum("add_to_carts"),
                            checkouts=Sum("checkouts_started"))
    assert all(totals.values()), totals
    assert days.exclude(utm_campaign="").exists()
    assert Visitor.objects.filter(customer__isnull=False).exists()
    assert Visitor.objects.filter(customer__isnull=True).exists()
