"""shopify.app.toml agrees with the code: topics, compliance URI, scopes, API version, dev URLs."""
import pytest

from devstore import topics as devstore_topics
from segments.shops.subscriptions import WEBHOOK_PATH, WEBHOOK_TOPICS
from shopseg import settings as app_settings
from shopseg.shopify.app_config import AppConfigError, app_config_load, app_config_parse
from webhooks.handlers import HANDLERS, TOPICS, subscription_topic

CONFIG = app_config_load()


def test_compliance_topics_are_the_handler_tables_unsubscribed_topics_at_the_webhook_endpoint():
    assert set(CONFIG.compliance_topics) == {t for t, spec in TOPICS.items() if not spec.subscribed}
    assert set(CONFIG.compliance_topics.values()) == {WEBHOOK_PATH}
    assert set(devstore_topics.COMPLIANCE_TOPICS) == set(CONFIG.compliance_topics)
    assert devstore_topics.COMPLIANCE_PATH == WEBHOOK_PATH


def test_every_subscribed_topic_has_a_handler_and_devstore_delivers_it_under_shopifys_name():
    """One table: what each shop is subscribed to is what the app handles, and devstore (which
    keeps Shopify's own topic list) knows each of those topics by the same GraphQL name."""
    assert WEBHOOK_TOPICS == {subscription_topic(t): spec.scope for t, spec in TOPICS.items() if spec.subscribed}
    assert {devstore_topics.ENUM_TO_REST[enum] for enum in WEBHOOK_TOPICS} <= set(HANDLERS)
    assert all(callable(HANDLERS[topic]) for topic in TOPICS)


def test_no_topic_is_declared_for_all_shops_and_also_subscribed_per_shop():
    # Shopify sends one delivery per subscription: a topic both here and in the handler table's
    # per-shop subscriptions would reach the app twice, under two webhook ids.
    subscribed = {t for t, spec in TOPICS.items() if spec.subscribed}
    assert not CONFIG.topics & subscribed
    assert CONFIG.topics <= set(TOPICS)      # anything declared here has a handler


def test_scopes_cover_every_subscribed_topic_and_match_the_settings_defaults():
    granted = set(CONFIG.scopes)
    for topic, spec in TOPICS.items():
        if spec.subscribed and spec.scope:
            assert spec.scope in granted or spec.scope.replace("read_", "write_", 1) in granted, topic
    assert ",".join(CONFIG.scopes) == ("read_customers,write_customers,read_orders,read_products,write_pixels,"
                                       "read_customer_events,write_app_proxy,read_discounts,write_discounts")
    assert CONFIG.optional_scopes == ("read_all_orders",)


def test_the_extensions_are_where_the_cli_looks():
    import tomllib
    from pathlib import Path

    root = Path(app_settings.__file__).resolve().parent.parent
    declared = tomllib.loads((root / "shopify.app.toml").read_text())["extension_directories"]
    found = {}
    for path in (p for pattern in declared for p in root.glob(f"{pattern}/shopify.extension.toml")):
        config = tomllib.loads(path.read_text())   # one extension at the top, or the CLI's [[extensions]] list
        found[path.parent.name] = [e["type"] for e in config.get("extensions", [config])]
    assert found == {"shopseg-pixel": ["web_pixel_extension"], "shopseg-theme": ["theme"],
                     "shopseg-flow-entered": ["flow_trigger"], "shopseg-flow-left": ["flow_trigger"]}


def test_the_app_proxy_reaches_the_segments_view():
    from django.urls import resolve

    assert (CONFIG.app_proxy.prefix, CONFIG.app_proxy.subpath) == ("apps", "shopseg")
    assert resolve(f"{CONFIG.app_proxy.url}/segments").url_name == "proxy-segments"


@pytest.mark.parametrize("section, error", [
    ('[app_proxy]\nurl = "/proxy"\nsubpath = "s"\n', "app_proxy needs url, subpath and prefix"),
    ('[app_proxy]\nurl = "/proxy"\nsubpath = "s"\nprefix = "shop"\n', "app_proxy.prefix is one of"),
])
def test_an_app_proxy_section_is_whole(section, error):
    with pytest.raises(AppConfigError, match=error):
        app_config_parse(BASE + section)


def test_development_values_are_the_settings_defaults():
    # The file holds the dev app; other environments keep their own copy and set settings to match.
    source = " ".join(open(app_settings.__file__).read().split())     # a long default may wrap
    assert f'"SHOPIFY_API_KEY", "{CONFIG.client_id}"' in source
    assert f'"SHOPSEG_APP_URL", "{CONFIG.application_url}"' in source
    assert f'"SHOPIFY_API_VERSION", "{CONFIG.webhook_api_version}"' in source
    assert f'"SHOPIFY_SCOPES", "{",".join(CONFIG.scopes)}"' in source
    assert f'"SHOPIFY_OPTIONAL_SCOPES", "{",".join(CONFIG.optional_scopes)}"' in source
    assert CONFIG.redirect_urls == (f"{CONFIG.application_url}/auth/callback",)  # segments.web.install
    assert CONFIG.embedded and len(CONFIG.name) <= 30


BASE = 'client_id = "k"\nname = "n"\napplication_url = "https://a.example"\nembedded = true\n' \
       '[webhooks]\napi_version = "2026-10"\n'


@pytest.mark.parametrize("subscriptions, error", [
    ('[[webhooks.subscriptions]]\nuri = "/w"\n', "topics or compliance_topics"),
    ('[[webhooks.subscriptions]]\ntopics = ["orders/create"]\n', "uri is required"),
    ('[[webhooks.subscriptions]]\ncompliance_topics = ["orders/create"]\nuri = "/w"\n', "compliance_topics"),
    ('[[webhooks.subscriptions]]\ntopics = ["orders/create", "orders/create"]\nuri = "/w"\n', "declared twice"),
    ('[[webhooks.subscriptions]]\ncompliance_topics = ["shop/redact"]\nuri = "/w"\n'
     '[[webhooks.subscriptions]]\ncompliance_topics = ["shop/redact"]\nuri = "/v"\n', "one subscription only"),
])
def test_the_rules_shopify_cli_enforces_are_enforced(subscriptions, error):
    with pytest.raises(AppConfigError, match=error):
        app_config_parse(BASE + subscriptions)


def test_a_valid_file_parses_with_relative_uris_under_the_application_url():
    config = app_config_parse(BASE + '[[webhooks.subscriptions]]\ntopics = ["orders/create"]\nuri = "/w"\n')
    assert config.topics == {"orders/create"}
    assert config.absolute_uri("/w") == "https://a.example/w"
    with pytest.raises(AppConfigError, match="api_version"):
        app_config_parse(BASE.replace('api_version = "2026-10"\n', ""))
