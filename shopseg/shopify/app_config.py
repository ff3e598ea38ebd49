"""shopify.app.toml, the app as Shopify knows it: read once, checked as Shopify CLI checks it."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

APP_TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})


class AppConfigError(ValueError):
    """The file breaks a rule Shopify CLI enforces on deploy."""


@dataclass(frozen=True)
class WebhookSubscription:
    uri: str
    topics: tuple[str, ...] = ()
    compliance_topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppProxy:
    """`https://<shop>/<prefix>/<subpath>/<rest>` is forwarded, signed, to `<url>/<rest>`."""
    url: str
    subpath: str
    prefix: str


PROXY_PREFIXES = ("apps", "a", "community", "tools")


@dataclass(frozen=True)
class AppConfig:
    client_id: str
    name: str
    application_url: str
    embedded: bool
    scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...]
    redirect_urls: tuple[str, ...]
    webhook_api_version: str
    subscriptions: tuple[WebhookSubscription, ...]
    app_proxy: AppProxy | None = None

    @property
    def topics(self) -> frozenset[str]:
        """Topics subscribed for every shop the app is installed on (compliance ones apart)."""
        return frozenset(t for s in self.subscriptions for t in s.topics)

    @property
    def compliance_topics(self) -> dict[str, str]:
        """Compliance topic -> its URI as declared (relative ones are under application_url)."""
        return {t: s.uri for s in self.subscriptions for t in s.compliance_topics}

    def absolute_uri(self, uri: str) -> str:
        return f"{self.application_url.rstrip('/')}{uri}" if uri.startswith("/") else uri


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AppConfigError(f"{where} must be a list of strings")
    return tuple(value)


def app_config_parse(text: str) -> AppConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AppConfigError(str(exc)) from None
    for key in ("client_id", "name", "application_url", "embedded"):
        if key not in doc:
            raise AppConfigError(f"{key} is required")
    if len(doc["name"]) > 30:
        raise AppConfigError("name is at most 30 characters")
    access = doc.get("access_scopes", {})
    webhooks = doc.get("webhooks", {})
    if "api_version" not in webhooks:
        raise AppConfigError("webhooks.api_version is required")
    subscriptions, seen, compliance = [], set(), set()
    for n, raw in enumerate(webhooks.get("subscriptions", [])):
        where = f"webhooks.subscriptions[{n}]"
        sub = WebhookSubscription(uri=str(raw.get("uri", "")), topics=_strings(raw.get("topics", []), where),
                                  compliance_topics=_strings(raw.get("compliance_topics", []), where))
        if not sub.uri:
            raise AppConfigError(f"{where}.uri is required")
        if not sub.topics and not sub.compliance_topics:
            raise AppConfigError(f"{where} needs topics or compliance_topics")
        if set(sub.compliance_topics) - COMPLIANCE_TOPICS:
            raise AppConfigError(f"{where}.compliance_topics: {sorted(set(sub.compliance_topics) - COMPLIANCE_TOPICS)}")
        for topic in sub.topics:
            key = f"{topic}::{sub.uri}::{raw.get('filter', '')}"
            if key in seen:
                raise AppConfigError(f"{where}: {topic} to {sub.uri} is declared twice")
            seen.add(key)
        if compliance & set(sub.compliance_topics):
            raise AppConfigError(f"{where}: a compliance topic may appear in one subscription only")
        compliance |= set(sub.compliance_topics)
        subscriptions.append(sub)
    scopes = access.get("scopes", "")
    proxy = doc.get("app_proxy")
    if proxy is not None:
        if not all(isinstance(proxy.get(k), str) and proxy[k] for k in ("url", "subpath", "prefix")):
            raise AppConfigError("app_proxy needs url, subpath and prefix")
        if proxy["prefix"] not in PROXY_PREFIXES:
            raise AppConfigError(f"app_proxy.prefix is one of {', '.join(PROXY_PREFIXES)}")
        proxy = AppProxy(url=proxy["url"], subpath=proxy["subpath"], prefix=proxy["prefix"])
    return AppConfig(
        client_id=str(doc["client_id"]), name=str(doc["name"]), application_url=str(doc["application_url"]),
        embedded=bool(doc["embedded"]), scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()),
        optional_scopes=_strings(access.get("optional_scopes", []), "access_scopes.optional_scopes"),
        redirect_urls=_strings(doc.get("auth", {}).get("redirect_urls", []), "auth.redirect_urls"),
        webhook_api_version=str(webhooks["api_version"]), subscriptions=tuple(subscriptions), app_proxy=proxy)


def app_config_load(path: Path = APP_TOML) -> AppConfig:
    return app_config_parse(path.read_text())
