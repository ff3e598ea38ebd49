"""Shop domains: the anchored pattern Shopify's security check asks for, nothing else."""
import pytest

from shopseg.shopify.domains import normalize_shop_domain, shop_base_url


@pytest.mark.parametrize("raw, expected", [
    ("demo.myshopify.com", "demo.myshopify.com"),
    ("  Demo-Store.MyShopify.com ", "demo-store.myshopify.com"),
    ("a.myshopify.com", "a.myshopify.com"),
    ("evil.com", None),
    ("demo.myshopify.com.evil.com", None),
    ("-demo.myshopify.com", None),
    ("de_mo.myshopify.com", None),
    ("https://demo.myshopify.com", None),
    ("demo.myshopify.com/admin", None),
    ("demo.myshopify.com\n", "demo.myshopify.com"),
    ("demo.myshopify.com\nx", None),
    ("a b.myshopify.com", None),
    ("shop.myshopify.com:443", None),
    ("shop.myshopify.com/", None),
    ("http://shop.myshopify.com", None),
    ("sh\u00f6p.myshopify.com", None),
    ("\u0282hop.myshopify.com", None),
    ("shop.myshopify.com%2F", None),
    ("shop.myshopify.com#x", None),
    ("", None),
    (None, None),
    (["demo.myshopify.com"], None),
])
def test_normalize(raw, expected):
    assert normalize_shop_domain(raw) == expected


def test_base_url_refuses_unvalidated_input():
    assert shop_base_url("https://{shop}", "demo.myshopify.com") == "https://demo.myshopify.com"
    assert shop_base_url("http://127.0.0.1:8765/shops/{shop}/", "demo.myshopify.com") == \
        "http://127.0.0.1:8765/shops/demo.myshopify.com"
    with pytest.raises(ValueError):
        shop_base_url("https://{shop}", "evil.com/x")
