"""Query and webhook HMACs: Shopify's documented vectors, shopifyapi's array rule, rotation."""
import shopify

from devstore.oauth import sign_query
from shopseg.shopify.signatures import query_hmac, query_hmac_valid, webhook_hmac, webhook_hmac_valid

DOCS_PARAMS = {"code": ["0907a61c0c8d55e99db179b68161bc00"], "shop": ["some-shop.myshopify.com"],
               "state": ["0.6784241404160823"], "timestamp": ["1337178173"]}


def test_docs_vector():
    assert query_hmac(DOCS_PARAMS, "hush") == "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
    without_state = {k: v for k, v in DOCS_PARAMS.items() if k != "state"}
    assert query_hmac(without_state, "hush") == "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"


def test_valid_and_forged():
    signed = {**DOCS_PARAMS, "hmac": ["700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"]}
    assert query_hmac_valid(signed, ["hush"])
    assert not query_hmac_valid({**signed, "shop": ["evil.myshopify.com"]}, ["hush"])
    assert not query_hmac_valid(signed, ["other"])
    assert not query_hmac_valid(DOCS_PARAMS, ["hush"])          # no hmac at all
    assert not query_hmac_valid({**signed, "hmac": [""]}, ["hush"])


def test_previous_secret_still_verifies_during_rotation():
    signed = {**DOCS_PARAMS, "hmac": [query_hmac(DOCS_PARAMS, "old-secret")]}
    assert query_hmac_valid(signed, ["new-secret", "old-secret"])
    assert not query_hmac_valid(signed, ["new-secret"])


def test_array_params_signed_like_shopifyapi():
    params = {"ids[]": ["1", "2"], "shop": ["a-shop.myshopify.com"], "timestamp": ["1700000000"]}
    shopify.Session.setup(api_key="k", secret="hush")
    try:
        expected = shopify.Session.calculate_hmac({"ids[]": ["1", "2"], "shop": "a-shop.myshopify.com",
                                                   "timestamp": "1700000000"})
    finally:
        shopify.Session.setup(api_key=None, secret=None)
    assert query_hmac(params, "hush") == expected


def test_webhook_vector_and_tampering():
    assert webhook_hmac(b'{"id":1}', "hush") == "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
    assert webhook_hmac_valid(b'{"id":1}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=", ["x", "hush"])
    assert not webhook_hmac_valid(b'{"id":2}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=", ["hush"])
    assert not webhook_hmac_valid(b'{"id":1}', None, ["hush"])
    assert not webhook_hmac_valid(b'{"id":1}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=", [""])


def test_delimiters_in_values_and_keys_are_escaped_like_shopifyapi():
    # Genuine values with % or & (a state, a return path) verify, and a value holding `&host=...`
    # is not the same message as a separate `host` parameter.
    params = {"state": "a%b&c", "return_to": "/admin?x=1&y=%20", "odd=key": "v", "shop": "a-shop.myshopify.com",
              "timestamp": "1700000000"}
    shopify.Session.setup(api_key="k", secret="hush")
    try:
        expected = shopify.Session.calculate_hmac(dict(params))
    finally:
        shopify.Session.setup(api_key=None, secret=None)
    assert query_hmac({k: [v] for k, v in params.items()}, "hush") == expected
    assert sign_query(params, "hush") == expected      # devstore signs as Shopify does
    merged = {"code": ["C&host=H"], "shop": ["s.myshopify.com"]}
    split = {"code": ["C"], "host": ["H"], "shop": ["s.myshopify.com"]}
    assert query_hmac(merged, "hush") != query_hmac(split, "hush")
