"""The web pixel extension as Shopify takes it: a strict-sandbox web_pixel_extension loaded only with
analytics consent, whose settings are exactly what the app activates it with, whose bundle fits
Shopify's 128 kB, and which subscribes to exactly the standard events the app's ingest reads."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from segments.storefront.batch import STANDARD_EVENTS
from segments.storefront.models import Pixel
from segments.storefront.pixel import pixel_settings

EXTENSION = Path(__file__).resolve().parent.parent / "extensions" / "shopseg-pixel"
CONFIG = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())


def test_it_is_a_strict_web_pixel_that_needs_only_analytics_consent():
    assert (CONFIG["type"], CONFIG["runtime_context"]) == ("web_pixel_extension", "strict")
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", CONFIG["handle"])
    assert CONFIG["customer_privacy"] == {"analytics": True, "marketing": False, "preferences": False,
                                          "sale_of_data": "disabled"}


def test_its_settings_are_what_the_app_activates_it_with():
    fields = CONFIG["settings"]["fields"]
    assert set(fields) == set(pixel_settings(Pixel(ingest_key="k")))
    assert {field["type"] for field in fields.values()} == {"single_line_text_field"}


def test_it_subscribes_to_the_standard_events_ingest_reads():
    source = (EXTENSION / "src" / "index.js").read_text()
    listed = re.search(r"STANDARD_EVENTS = \[(.*?)\];", source, re.S).group(1)
    assert set(json.loads(f"[{listed.strip().rstrip(',')}]")) == STANDARD_EVENTS


def test_the_bundle_is_built_and_within_shopifys_limit():
    bundle = EXTENSION / "dist" / "shopseg-pixel.js"
    assert bundle.exists(), "make install builds it (npm run build)"
    assert 0 < bundle.stat().st_size <= 128 * 1024
    assert "WebPixel::Render" in bundle.read_text()
