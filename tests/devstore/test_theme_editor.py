"""devstore's theme editor (its control API) and the app proxy route of its storefront: blocks are
placed with the settings the extension declares, anything else is refused, and a storefront request
under /apps/shopseg/ reaches the app signed as Shopify signs it."""
from __future__ import annotations

import threading
import time
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from devstore.app_proxy import proxy_signature

BANNER = {"block": "segment-banner", "settings": {"segments": "seg:vip", "member_heading": "For our VIPs"}}


def put(devstore, domain: str, theme: dict) -> httpx.Response:
    return devstore.http.put(f"{devstore.url}/_control/shops/{domain}/theme", json=theme)


def test_a_placed_block_renders_on_its_page_and_only_there(devstore):
    domain = devstore.create_shop()
    assert devstore.control("GET", f"/shops/{domain}/theme")["embed"]["enabled"] is False   # off after install
    assert put(devstore, domain, {"templates": {"index": [BANNER]}}).status_code == 200
    home = httpx.get(f"{devstore.url}/shops/{domain}/store/").text
    assert "New this season" in home and "For our VIPs" in home     # a visitor's page holds both, hidden
    assert 'class="shopseg-block"' in home and "shopseg.css" in home
    assert "shopseg-embed.js" not in home                           # the embed is off
    assert "For our VIPs" not in httpx.get(f"{devstore.url}/shops/{domain}/store/cart").text


@pytest.mark.parametrize("theme", [
    {"templates": {"index": [{"block": "no-such-block", "settings": {}}]}},
    {"templates": {"index": [{"block": "segment-banner", "settings": {"no_such_setting": 1}}]}},
    {"templates": {"checkout": [BANNER]}},
    {"templates": {"index": [{"block": "shopseg-embed", "settings": {}}]}},
], ids=["unknown-block", "unknown-setting", "unknown-template", "embed-as-block"])
def test_what_the_theme_editor_would_not_offer_is_refused(devstore, theme):
    domain = devstore.create_shop()
    response = put(devstore, domain, theme)
    assert response.status_code == 422 and response.json()["error"]
    assert devstore.control("GET", f"/shops/{domain}/theme")["templates"] == {}


def test_the_app_proxy_forwards_signed_as_shopify_signs(devstore):
    """A stand-in app records what reached its proxy URL."""
    seen = {}

    def app(environ, start_response):
        seen["path"], seen["query"] = environ["PATH_INFO"], environ["QUERY_STRING"]
        start_response("200 OK", [("Content-Type", "application/json"), ("Set-Cookie", "a=b")])
        return [b'{"segments": []}']

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        devstore.store.app_register(api_key="proxy-app", api_secret="proxy-secret",
                                    app_url=f"http://127.0.0.1:{server.server_port}/")
        domain = devstore.create_shop()
        devstore.store.conn().execute("INSERT INTO installations (shop, api_key, scopes, installed_at) "
                                      "VALUES (?, 'proxy-app', 'write_app_proxy', '2026-01-01T00:00:00Z')", (domain,))
        devstore.store.conn().commit()
        sent = int(time.time())
        answer = httpx.get(f"{devstore.url}/shops/{domain}/store/apps/shopseg/segments?client_id=abc&shop=evil")
        answered = int(time.time())
    finally:
        server.shutdown()
    assert answer.status_code == 200 and answer.json() == {"segments": []}
    assert "set-cookie" not in answer.headers                      # Shopify passes no cookies on
    assert seen["path"] == "/proxy/segments"
    params = parse_qsl(seen["query"], keep_blank_values=True)
    assert dict(params)["shop"] == domain and [k for k, _ in params].count("shop") == 1
    assert dict(params)["logged_in_customer_id"] == "" and dict(params)["path_prefix"] == "/apps/shopseg"
    assert sent <= int(dict(params)["timestamp"]) <= answered      # signed when forwarded
    assert dict(params)["signature"] == proxy_signature(params, "proxy-secret")
