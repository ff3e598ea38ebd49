"""The theme blocks rendered by the real Liquid engine (devstore/theme.py): a logged-in customer gets
only the variant their tags choose; a logged-out visitor gets both, hidden, for the embed to pick;
whatever the merchant types is escaped."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from devstore.theme import block_schema, embed_html, render_block

APP_BLOCKS = ["segment-content", "segment-banner", "segment-products"]
SETTINGS = {"segments": " seg:VIP , seg:window-shoppers,", "member_heading": "For members",
            "default_heading": "For everyone"}
COLLECTION_SETTINGS = {"member_collection": "vip", "default_collection": "all"}    # the product list's
HAT = {"title": "Hat", "url": "/products/hat", "price": 123456,
       "featured_image": {"src": "https://cdn.example/hat.jpg", "alt": "A hat", "width": 1200, "height": 800}}
COLLECTIONS = {"vip": {"products": [HAT] * 20}, "all": {"products": [HAT]}}
VOID = {"img", "br", "hr", "input", "meta", "link", "source", "wbr"}


class Page(HTMLParser):
    """Each text of the page with the attributes of the elements around it, outermost first."""

    def __init__(self, html: str):
        super().__init__()
        self.open: list[dict] = []
        self.texts: list[tuple[str, list[dict]]] = []
        self.elements: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, **{k: "" if v is None else v for k, v in attrs}}
        self.elements.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1]["tag"] == tag, f"</{tag}> closes nothing open"
        self.open.pop()

    def handle_data(self, data):
        if data.strip():
            self.texts.append((data.strip(), list(self.open)))

    def visible(self) -> list[str]:
        return [text for text, around in self.texts if not any("hidden" in e for e in around)]

    def in_variant(self, variant: str) -> list[str]:
        return [text for text, around in self.texts if any(e.get("data-shopseg-variant") == variant for e in around)]


def settings_for(block: str, **settings) -> dict:
    return {**SETTINGS, **(COLLECTION_SETTINGS if block == "segment-products" else {}), **settings}


def render(block, customer, **settings):
    return render_block(block, settings=settings_for(block, **settings), customer=customer, collections=COLLECTIONS)


@pytest.mark.parametrize("block", APP_BLOCKS)
def test_a_logged_in_member_sees_only_the_member_content(block):
    html = render(block, {"tags": ["newsletter", " Seg:Vip "]})    # tags compared trimmed, in any case
    page = Page(html)
    assert "For members" in page.visible()
    assert "For everyone" not in html
    assert "shopseg-block" not in html and "data-shopseg-variant" not in html


@pytest.mark.parametrize("block", APP_BLOCKS)
@pytest.mark.parametrize("tags", [[], ["seg:vip-control", "newsletter"], ["seg"]])
def test_a_logged_in_non_member_sees_only_the_default(block, tags):
    html = render(block, {"tags": tags})    # a holdout tag that starts with a member's is not one
    assert "For everyone" in Page(html).visible()
    assert "For members" not in html and "shopseg-block" not in html


@pytest.mark.parametrize("block", APP_BLOCKS)
def test_a_logged_out_visitor_gets_both_variants_hidden_in_a_hidden_wrapper(block):
    page = Page(render(block, None))
    assert page.visible() == []    # nothing shows until the embed decides: no flash of the wrong one
    wrapper, = [e for e in page.elements if "shopseg-block" in e.get("class", "").split()]
    assert "hidden" in wrapper
    assert wrapper["data-shopseg-segments"] == "seg:vip,seg:window-shoppers"
    variants = [e for e in page.elements if "data-shopseg-variant" in e]
    assert [(v["data-shopseg-variant"], "hidden" in v) for v in variants] == [("member", True), ("default", True)]
    assert "For members" in page.in_variant("member") and "For members" not in page.in_variant("default")
    assert "For everyone" in page.in_variant("default") and "For everyone" not in page.in_variant("member")


@pytest.mark.parametrize("block", APP_BLOCKS)
def test_the_theme_editor_shows_the_variant_the_merchant_previews(block):
    for preview, shown, hidden in [("member", "For members", "For everyone"),
                                   ("default", "For everyone", "For members")]:
        html = render_block(block, settings=settings_for(block, preview=preview), customer=None,
                            collections=COLLECTIONS, design_mode=True)
        assert shown in Page(html).visible() and hidden not in html and "shopseg-block" not in html


@pytest.mark.parametrize("block", APP_BLOCKS)
def test_what_the_merchant_types_is_escaped(block):
    evil = '<script>alert(1)</script> & "quoted"'
    html = render(block, None, member_heading=evil, default_heading=evil, segments='seg:vip" onclick="x')
    assert "<script>" not in html and 'onclick="x"' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    assert Page(html).elements[0]["data-shopseg-segments"] == 'seg:vip" onclick="x'


def test_a_setting_the_block_does_not_have_is_refused():
    with pytest.raises(ValueError, match="member_headng"):
        render_block("segment-content", settings={"member_headng": "typo"}, customer=None)


def test_missing_settings_take_the_schema_defaults():
    defaults = {s["id"]: s.get("default") for s in block_schema("segment-content")["settings"] if "id" in s}
    page = Page(render_block("segment-content", settings={}, customer={"tags": ["seg:vip"]}))
    assert defaults["segments"] == "seg:vip" and defaults["member_heading"] in page.visible()


def test_the_product_list_shows_the_collections_products_as_cards():
    page = Page(render("segment-products", {"tags": ["seg:vip"]}, product_count=3))
    cards = [e for e in page.elements if e.get("class") == "shopseg-products__card"]
    assert len(cards) == 3    # the range setting caps the 20 products
    assert page.visible().count("$1,234.56") == 3
    image = next(e for e in page.elements if e["tag"] == "img")
    assert (image["src"], image["alt"], image["width"], image["height"]) == (
        "https://cdn.example/hat.jpg?width=600", "A hat", "600", "400")


def test_the_embed_gives_a_logged_in_customer_their_tags_and_loads_the_script_deferred():
    tags = ["seg:vip", "</script><script>alert(1)</script>", "a&b"]
    html = embed_html({"tags": tags})
    data = re.search(r'<script type="application/json" id="shopseg-customer-tags">(.*?)</script>', html, re.S)
    assert json.loads(data.group(1)) == tags    # `json` keeps a tag from closing the script early
    script = next(e for e in Page(html).elements if e.get("src"))
    assert script["src"] == "/extensions/shopseg-theme/assets/shopseg-embed.js"
    assert "defer" in script and script["data-shopseg-proxy"] == "/apps/shopseg"


def test_the_embed_gives_a_logged_out_visitor_no_tags():
    html = embed_html(None)
    assert "shopseg-customer-tags" not in html and "shopseg-embed.js" in html
