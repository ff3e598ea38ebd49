"""devstore's web pixel API: an app activates its web pixel on a shop with webPixelCreate, changes its
settings with webPixelUpdate and reads it with webPixel, one pixel per app and shop, with Shopify's
scopes, userError codes and answer shapes."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from werkzeug.test import EnvironBuilder

from devstore import control, oauth
from devstore.config import DevstoreConfig
from devstore.graphql_api import AdminAPI
from devstore.state import DevStore, gid
from devstore.web_pixels import web_pixel_settings
from tests.devstore.test_graphql import API_KEY, SHOP, FakeClock, data, gql, seeded_api

PIXEL_SCOPES = frozenset({"write_pixels", "read_customer_events"})
OTHER_SHOP = "other-shop.myshopify.com"

CREATE = """mutation webPixelCreate($webPixel: WebPixelInput!) {
  webPixelCreate(webPixel: $webPixel) { userErrors { code field message } webPixel { id settings } } }"""
UPDATE = """mutation webPixelUpdate($id: ID!, $webPixel: WebPixelInput!) {
  webPixelUpdate(id: $id, webPixel: $webPixel) { userErrors { code field message } webPixel { id settings } } }"""
DELETE = """mutation webPixelDelete($id: ID!) {
  webPixelDelete(id: $id) { deletedWebPixelId userErrors { code field message } } }"""
QUERY = "query($id: ID) { webPixel(id: $id) { id settings } }"


@pytest.fixture
def api(store: DevStore, devstore_config: DevstoreConfig) -> AdminAPI:
    return seeded_api(store, devstore_config, FakeClock())


def create(api: AdminAPI, settings: object, **kwargs: object) -> dict:
    kwargs.setdefault("scopes", PIXEL_SCOPES)
    return data(api, CREATE, {"webPixel": {"settings": settings}}, **kwargs)["webPixelCreate"]


def update(api: AdminAPI, id_: str, settings: object, **kwargs: object) -> dict:
    kwargs.setdefault("scopes", PIXEL_SCOPES)
    return data(api, UPDATE, {"id": id_, "webPixel": {"settings": settings}}, **kwargs)["webPixelUpdate"]


def test_create_stores_the_settings_and_answers_them_as_a_json_string(api: AdminAPI, store: DevStore) -> None:
    # The form Shopify's tutorial sends: a string holding the JSON object.
    created = create(api, json.dumps({"accountID": "234", "endpoint": "https://app.example/pixel"}))
    assert created["userErrors"] == []
    pixel = created["webPixel"]
    assert pixel["id"].startswith("gid://shopify/WebPixel/")
    assert json.loads(pixel["settings"]) == {"accountID": "234", "endpoint": "https://app.example/pixel"}
    assert pixel["settings"] == '{"accountID":"234","endpoint":"https://app.example/pixel"}'
    assert web_pixel_settings(store, SHOP, API_KEY) == {"accountID": "234", "endpoint": "https://app.example/pixel"}


def test_settings_may_be_a_json_object_or_an_inline_literal(api: AdminAPI) -> None:
    pixel = create(api, {"accountID": "7"})["webPixel"]
    assert pixel["settings"] == '{"accountID":"7"}'
    inline = data(api, f'mutation {{ webPixelUpdate(id: "{pixel["id"]}", webPixel: {{settings: {{accountID: "8"}}}}) '
                       "{ webPixel { settings } userErrors { code } } }", scopes=PIXEL_SCOPES)["webPixelUpdate"]
    assert inline == {"webPixel": {"settings": '{"accountID":"8"}'}, "userErrors": []}


def test_a_second_create_is_taken(api: AdminAPI, store: DevStore) -> None:
    first = create(api, '{"accountID":"1"}')["webPixel"]
    again = create(api, '{"accountID":"2"}')
    assert again == {"webPixel": None, "userErrors": [{"code": "TAKEN", "field": None,
                                                       "message": "Web pixel is taken."}]}
    assert web_pixel_settings(store, SHOP, API_KEY) == {"accountID": "1"}
    assert store.conn().execute("SELECT COUNT(*) FROM web_pixels").fetchone()[0] == 1
    assert first["id"] == data(api, QUERY, scopes=PIXEL_SCOPES)["webPixel"]["id"]


def test_update_replaces_the_settings(api: AdminAPI, store: DevStore) -> None:
    pixel_id = create(api, '{"accountID":"1","debug":"true"}')["webPixel"]["id"]
    updated = update(api, pixel_id, '{"accountID":"2"}')
    assert updated == {"userErrors": [], "webPixel": {"id": pixel_id, "settings": '{"accountID":"2"}'}}
    assert web_pixel_settings(store, SHOP, API_KEY) == {"accountID": "2"}


def test_update_of_an_unknown_pixel_is_not_found(api: AdminAPI, store: DevStore) -> None:
    pixel_id = create(api, '{"accountID":"1"}')["webPixel"]["id"]
    for unknown in (gid("WebPixel", 1), gid("Customer", 7), "not-a-gid"):
        missed = update(api, unknown, '{"accountID":"2"}')
        assert missed["webPixel"] is None
        assert [(e["code"], e["field"]) for e in missed["userErrors"]] == [("NOT_FOUND", ["id"])]
    assert web_pixel_settings(store, SHOP, API_KEY) == {"accountID": "1"}
    assert update(api, pixel_id, "[]")["userErrors"][0]["code"] == "INVALID_SETTINGS"


@pytest.mark.parametrize(("settings", "code"), [
    ("not json", "INVALID_CONFIGURATION_JSON"),
    ("", "INVALID_CONFIGURATION_JSON"),
    ('["accountID"]', "INVALID_SETTINGS"),
    ('"{\\"accountID\\":\\"1\\"}"', "INVALID_SETTINGS"),      # encoded twice
    ('{"accountID": 1}', "INVALID_SETTINGS"),                  # every setting is a single_line_text_field
    (42, "INVALID_SETTINGS"),
    ([{"accountID": "1"}], "INVALID_SETTINGS"),
    ({"nested": {"a": "b"}}, "INVALID_SETTINGS"),
])
def test_settings_that_are_not_an_object_of_strings_are_refused(api: AdminAPI, store: DevStore, settings: object,
                                                                code: str) -> None:
    refused = create(api, settings)
    assert refused["webPixel"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [(code, ["webPixel", "settings"])]
    assert web_pixel_settings(store, SHOP, API_KEY) is None


def test_writing_needs_write_pixels_and_read_customer_events(api: AdminAPI, store: DevStore) -> None:
    for scopes in (frozenset({"read_customer_events", "read_pixels"}), frozenset({"write_pixels"}),
                   frozenset({"read_customers"})):
        body = gql(api, CREATE, {"webPixel": {"settings": '{"accountID":"1"}'}}, scopes=scopes)
        error = body["errors"][0]
        assert error["message"] == ("Access denied for webPixelCreate field. Required access: `write_pixels` access "
                                    "scope. Also: The app requires read_customer_events access scope and user "
                                    "access permission.")
        assert error["extensions"]["code"] == "ACCESS_DENIED" and error["path"] == ["webPixelCreate"]
        assert body["data"] == {"webPixelCreate": None}
    assert web_pixel_settings(store, SHOP, API_KEY) is None
    pixel_id = create(api, '{"accountID":"1"}')["webPixel"]["id"]
    body = gql(api, UPDATE, {"id": pixel_id, "webPixel": {"settings": "{}"}}, scopes=frozenset({"write_pixels"}))
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert web_pixel_settings(store, SHOP, API_KEY) == {"accountID": "1"}


def test_the_query_answers_the_apps_pixel(api: AdminAPI) -> None:
    pixel = create(api, '{"accountID":"1"}')["webPixel"]
    assert data(api, QUERY, scopes=PIXEL_SCOPES)["webPixel"] == pixel
    assert data(api, QUERY, {"id": pixel["id"]}, scopes=frozenset({"read_pixels"}))["webPixel"] == pixel
    node = data(api, "query($id: ID!) { node(id: $id) { __typename id ... on WebPixel { settings } } }",
                {"id": pixel["id"]}, scopes=PIXEL_SCOPES)["node"]
    assert node == {"__typename": "WebPixel", **pixel}


def test_the_query_without_a_pixel_is_shopifys_error(api: AdminAPI) -> None:
    body = gql(api, QUERY, scopes=PIXEL_SCOPES)
    assert body["data"] == {"webPixel": None}
    assert body["errors"][0]["message"] == "No web pixel was found for this app." and \
        body["errors"][0]["path"] == ["webPixel"]
    pixel_id = create(api, '{"accountID":"1"}')["webPixel"]["id"]
    other = gql(api, QUERY, {"id": gid("WebPixel", 1)}, scopes=PIXEL_SCOPES)
    assert other["errors"][0]["message"] == "No web pixel was found for this app."
    malformed = gql(api, QUERY, {"id": "1"}, scopes=PIXEL_SCOPES)
    assert malformed["errors"][0]["message"] == "Invalid global id '1'"
    assert data(api, QUERY, {"id": pixel_id}, scopes=PIXEL_SCOPES)["webPixel"]["id"] == pixel_id


def test_reading_needs_read_pixels(api: AdminAPI) -> None:
    create(api, '{"accountID":"1"}')
    body = gql(api, QUERY, scopes=frozenset({"read_customer_events"}))
    assert body["errors"][0]["message"] == ("Access denied for webPixel field. Required access: `read_pixels` "
                                            "access scope.")
    assert body["data"] == {"webPixel": None}


def test_another_app_or_shop_neither_sees_nor_changes_the_pixel(api: AdminAPI, store: DevStore) -> None:
    pixel_id = create(api, '{"accountID":"mine"}')["webPixel"]["id"]
    other_app = {"scopes": PIXEL_SCOPES, "api_key": "another-app"}
    assert gql(api, QUERY, **other_app)["errors"][0]["message"] == "No web pixel was found for this app."
    assert update(api, pixel_id, '{"accountID":"theirs"}', **other_app)["userErrors"][0]["code"] == "NOT_FOUND"
    # The other app has a pixel of its own on the same shop.
    theirs = create(api, '{"accountID":"theirs"}', **other_app)["webPixel"]
    assert theirs["id"] != pixel_id
    store.shop_create(OTHER_SHOP)
    body = json.dumps({"query": UPDATE, "variables": {"id": pixel_id, "webPixel": {"settings": "{}"}}}).encode()
    _, _, answer = api.execute(shop=OTHER_SHOP, api_key=API_KEY, scopes=set(PIXEL_SCOPES), api_version="2026-10",
                               body=body)
    assert answer["data"]["webPixelUpdate"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert web_pixel_settings(store, SHOP, API_KEY) == {"accountID": "mine"}
    assert web_pixel_settings(store, SHOP, "another-app") == {"accountID": "theirs"}
    assert web_pixel_settings(store, OTHER_SHOP, API_KEY) is None


def test_delete_then_create_again(api: AdminAPI, store: DevStore) -> None:
    pixel_id = create(api, '{"accountID":"1"}')["webPixel"]["id"]
    deleted = data(api, DELETE, {"id": pixel_id}, scopes=PIXEL_SCOPES)["webPixelDelete"]
    assert deleted == {"deletedWebPixelId": pixel_id, "userErrors": []}
    again = data(api, DELETE, {"id": pixel_id}, scopes=PIXEL_SCOPES)["webPixelDelete"]
    assert again["deletedWebPixelId"] is None and again["userErrors"][0]["code"] == "NOT_FOUND"
    assert create(api, '{"accountID":"2"}')["userErrors"] == []


def test_uninstalling_the_app_removes_its_pixel(api: AdminAPI, store: DevStore) -> None:
    create(api, '{"accountID":"1"}')
    oauth.uninstall(store, SHOP, API_KEY)
    assert web_pixel_settings(store, SHOP, API_KEY) is None


def test_the_control_api_lists_the_shops_pixels(api: AdminAPI, store: DevStore) -> None:
    pixel_id = create(api, {"accountID": "1"})["webPixel"]["id"]
    request = EnvironBuilder(path=f"/_control/shops/{SHOP}/web-pixels").get_request()
    answer = json.loads(control.web_pixels(SimpleNamespace(store=store), request, SHOP).get_data())
    assert [(p["id"], p["api_key"], p["settings"]) for p in answer["web_pixels"]] == [
        (pixel_id, API_KEY, {"accountID": "1"})]
    control.reset(SimpleNamespace(store=store), request, SHOP)
    assert web_pixel_settings(store, SHOP, API_KEY) is None


def test_the_pixel_scopes_can_be_requested_at_install() -> None:
    assert {"write_pixels", "read_pixels", "read_customer_events"} <= oauth.KNOWN_SCOPES
