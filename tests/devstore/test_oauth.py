"""devstore's OAuth: Shopify's signing, the three grants, refresh-token rotation, revocation."""
import datetime as dt
import time

import jwt
import pytest

from devstore import oauth
from devstore.config import DevstoreConfig
from devstore.state import iso, utcnow

SHOP = "test-shop.myshopify.com"
KEY, SECRET = "app-key", "s" * 40


@pytest.fixture
def app(store):
    store.app_register(api_key=KEY, api_secret=SECRET, app_url="https://app.example/")
    return store


@pytest.fixture
def config():
    return DevstoreConfig(access_token_ttl=60, refresh_token_ttl=3600)


def grant(store, config, **form):
    return oauth.access_token(store, config, SHOP, {"client_id": KEY, "client_secret": SECRET, **form})


def authorize(store, scope="read_customers,write_customers"):
    redirect = oauth.authorize(store, SHOP, {"client_id": KEY, "scope": scope, "state": "nonce",
                                             "redirect_uri": "https://app.example/auth/callback"}).redirect_to
    return dict(p.split("=", 1) for p in redirect.split("?", 1)[1].split("&"))


def test_signing_matches_shopifys_documented_vector():
    params = {"code": "0907a61c0c8d55e99db179b68161bc00", "shop": "some-shop.myshopify.com",
              "state": "0.6784241404160823", "timestamp": "1337178173"}
    assert oauth.sign_query(params, "hush") == "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"


def test_authorize_redirect_is_signed_and_carries_what_shopify_sends(app):
    params = authorize(app)
    assert {"code", "hmac", "host", "shop", "state", "timestamp"} <= params.keys()
    assert params["hmac"] == oauth.sign_query(params, SECRET)


@pytest.mark.parametrize("bad", [{"client_id": "nope"}, {"redirect_uri": "https://evil.example/cb"},
                                 {"scope": "read_everything"}])
def test_authorize_refusals(app, bad):
    params = {"client_id": KEY, "scope": "read_customers", "state": "n",
              "redirect_uri": "https://app.example/auth/callback", **bad}
    with pytest.raises(oauth.OAuthError):
        oauth.authorize(app, SHOP, params)


def test_expiring_code_grant_then_code_is_single_use(app, config):
    code = authorize(app)["code"]
    body = grant(app, config, code=code, expiring="1")
    assert body["access_token"].startswith("shpat_") and body["refresh_token"].startswith("shprt_")
    assert body["expires_in"] == 60 and body["refresh_token_expires_in"] == 3600
    assert body["scope"] == "read_customers,write_customers"
    assert oauth.token_lookup(app, SHOP, body["access_token"])["api_key"] == KEY
    with pytest.raises(oauth.OAuthError) as info:
        grant(app, config, code=code, expiring="1")
    assert info.value.status == 400


def test_legacy_grant_has_no_expiry(app, config):
    body = grant(app, config, code=authorize(app)["code"])
    assert "refresh_token" not in body and "expires_in" not in body


def test_wrong_client_secret_is_refused(app, config):
    with pytest.raises(oauth.OAuthError) as info:
        oauth.access_token(app, config, SHOP, {"client_id": KEY, "client_secret": "x", "code": "c"})
    assert info.value.error == "invalid_client"


def test_refresh_rotates_and_the_old_token_dies_once_the_new_one_is_used(app, config):
    first = grant(app, config, code=authorize(app)["code"], expiring="1")
    second = grant(app, config, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second["access_token"] != first["access_token"] and second["refresh_token"] != first["refresh_token"]
    # a retry with the old token still works until its replacement is used (Shopify, August 2026)
    retry = grant(app, config, grant_type="refresh_token", refresh_token=first["refresh_token"])
    grant(app, config, grant_type="refresh_token", refresh_token=retry["refresh_token"])
    with pytest.raises(oauth.OAuthError) as info:
        grant(app, config, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert info.value.error == "invalid_grant"


def test_expired_access_token_is_not_accepted(app, config):
    body = grant(app, config, code=authorize(app)["code"], expiring="1")
    with app.tx() as conn:
        conn.execute("UPDATE tokens SET expires_at = ? WHERE token = ?",
                     (iso(utcnow() - dt.timedelta(seconds=1)), body["access_token"]))
    assert oauth.token_lookup(app, SHOP, body["access_token"]) is None


def test_uninstall_revokes_every_token_and_emits_app_uninstalled(app, config):
    events = []
    app.subscribe(events.append)
    body = grant(app, config, code=authorize(app)["code"], expiring="1")
    assert oauth.uninstall(app, SHOP, KEY)
    assert oauth.token_lookup(app, SHOP, body["access_token"]) is None
    with pytest.raises(oauth.OAuthError):
        grant(app, config, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert [e.topic for e in events] == ["app/uninstalled"]
    assert not oauth.uninstall(app, SHOP, KEY)       # a second uninstall does nothing


def test_token_exchange(app, config):
    token = oauth.session_token(app, SHOP, KEY)
    body = grant(app, config, grant_type=oauth.TOKEN_EXCHANGE, subject_token=token,
                 subject_token_type=oauth.ID_TOKEN_TYPE, expiring="1")
    assert body["refresh_token"].startswith("shprt_")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=KEY)
    assert claims["dest"] == f"https://{SHOP}" and claims["exp"] - claims["nbf"] == 60


@pytest.mark.parametrize("subject", ["not-a-jwt", "forged", "expired", "other-shop"])
def test_token_exchange_refuses_bad_subject_tokens(app, config, subject):
    now = int(time.time())
    claims = {"iss": f"https://{SHOP}/admin", "dest": f"https://{SHOP}", "aud": KEY, "exp": now + 60, "nbf": now}
    tokens = {
        "not-a-jwt": "not-a-jwt",
        "forged": jwt.encode(claims, "w" * 40, algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 60}, SECRET, algorithm="HS256"),
        "other-shop": jwt.encode({**claims, "dest": "https://other.myshopify.com"}, SECRET, algorithm="HS256"),
    }
    with pytest.raises(oauth.OAuthError) as info:
        grant(app, config, grant_type=oauth.TOKEN_EXCHANGE, subject_token=tokens[subject],
              subject_token_type=oauth.ID_TOKEN_TYPE, expiring="1")
    assert (info.value.status, info.value.error) == (400, "invalid_subject_token")


def test_graphql_answers_401_like_shopify_for_revoked_and_unknown_tokens(app, config):
    import httpx

    from devstore.server import DevstoreServer

    server = DevstoreServer(app, config, port=0).start()
    try:
        body = grant(app, config, code=authorize(app)["code"], expiring="1")
        url = f"{server.url}/shops/{SHOP}/admin/api/2026-10/graphql.json"
        query = {"query": "{ shop { name } }"}
        ok = httpx.post(url, json=query, headers={"X-Shopify-Access-Token": body["access_token"]})
        assert ok.status_code == 200 and ok.json()["data"]["shop"]["name"]
        oauth.uninstall(app, SHOP, KEY)
        for token in (body["access_token"], "shpat_unknown", ""):
            refused = httpx.post(url, json=query, headers={"X-Shopify-Access-Token": token})
            assert refused.status_code == 401
            assert refused.json() == {"errors": "[API] Invalid API key or access token "
                                                "(unrecognized login or wrong password)"}
        assert httpx.post(f"{server.url}/shops/nope.myshopify.com/admin/api/2026-10/graphql.json",
                          json=query).status_code == 404
    finally:
        server.stop()
