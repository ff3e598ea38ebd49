"""The predictions page in Chromium, framed by devstore's admin at 1280 px: before a fit it says why
there is nothing; after one, the model's quality and the buyers' bands read off the page equal what
was stored, and the predicted-against-actual chart has a bar per series and bucket."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from segments.predictions.models import CustomerPrediction
from segments.predictions.service import shop_predictions_fit
from segments.shops.models import Shop
from tests.browser.test_measurement import full_screenshot, open_in_frame, texts
from tests.conftest import install_live, settle
from tests.segments.predictions.test_service import NOW, place, simulated

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_predictions_page_shows_the_models_quality_and_the_buyers(page, devstore, live_server, settings):
    domain, admin_url = install_live(devstore, live_server, settings)
    settle(devstore, domain)
    shop = Shop.objects.get(domain=domain)
    frame = open_in_frame(page, admin_url, "/admin/predictions")
    expect(frame.locator("#no-model")).to_have_text("No predictions yet")

    place(shop, simulated(600))
    model = shop_predictions_fit(shop=shop, now=NOW)
    frame = open_in_frame(page, admin_url, "/admin/predictions")
    quality = model.quality
    assert frame.inner_text("[data-fact=actual]") == f"{quality['actual']:,}"
    assert frame.inner_text("[data-fact=predicted]") == f"{quality['predicted']:,.0f}"
    assert frame.inner_text("[data-fact=error]").endswith("%")
    counts = [int(t.replace(",", "")) for t in texts(frame, "#bands tbody td:nth-child(2)")]
    assert sum(counts) == CustomerPrediction.objects.filter(shop=shop).count() == model.customers
    shown = sum(1 for b in quality["by_repeat"] for v in (b["predicted"], b["actual"]) if v is not None)
    expect(frame.locator("[data-chart=quality] rect")).to_have_count(shown)
    assert texts(frame, "[data-chart=quality] .legend li") == ["Predicted", "Actual"]
    full_screenshot(page, frame, "measurement-predictions")
