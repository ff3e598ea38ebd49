"""devstore's OAuth: install links, the authorize page, the access-token endpoint and session tokens.

Behaves like Shopify's: the authorization-code grant (legacy or expiring offline tokens), the
refresh grant with rotation, token exchange of a session token, and the signed query strings
and JWTs that Shopify hands to an app.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jwt

from .config import DevstoreConfig
from .state import DevStore, Event, iso, parse_iso, utcnow

KNOWN_SCOPES = {
    "read_customers", "write_customers", "read_orders", "write_orders", "read_all_orders",
    "read_products", "write_products", "read_inventory", "write_inventory", "read_checkouts", "write_checkouts",
    "read_pixels", "write_pixels", "read_customer_events", "write_app_proxy", "read_discounts", "write_discounts",
}
CODE_TTL = dt.timedelta(minutes=10)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
# Rotation since August 2026: the replaced refresh token keeps working until its successor is
# first used, for at most 30 days.
REFRESH_GRACE = dt.timedelta(days=30)


class OAuthError(Exception):
    """An OAuth request Shopify would refuse: HTTP status plus Shopify's error body."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def sign_query(params: dict[str, str], secret: str) -> str:
    """Shopify's hex HMAC over the sorted `k=v` pairs of every parameter but hmac/signature, joined
    with `&`, each with its delimiters escaped (`%` → `%25`, `=` in the key → `%3D`, `&` → `%26`)."""
    pairs = (f"{k.replace('%', '%25').replace('=', '%3D')}={v.replace('%', '%25')}".replace("&", "%26")
             for k, v in params.items() if k not in ("hmac", "signature"))
    return hmac.new(secret.encode(), "&".join(sorted(pairs)).encode(), hashlib.sha256).hexdigest()


def admin_host(shop: str) -> str:
    """The `host` parameter: base64url of the admin host, as the embedded admin sends it."""
    handle = shop.split(".")[0]
    return base64.urlsafe_b64encode(f"admin.shopify.com/store/{handle}".encode()).decode().rstrip("=")


def signed_params(shop: str, secret: str, **extra: str) -> dict[str, str]:
    params = {"shop": shop, "timestamp": str(int(time.time())), "host": admin_host(shop), **extra}
    params["hmac"] = sign_query(params, secret)
    return params


def install_url(store: DevStore, shop: str, api_key: str) -> str:
    """What the merchant's click on "install" opens: the app URL with a signed query."""
    app = _app(store, api_key)
    return f"{app['app_url']}?{urlencode(signed_params(shop, app['api_secret']))}"


def session_token(store: DevStore, shop: str, api_key: str, *, user_id: int = 1, ttl: int = 60,
                  now: float | None = None) -> str:
    """A session token as App Bridge's `shopify.idToken()` returns it (HS256, app secret)."""
    app = _app(store, api_key)
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": api_key, "sub": str(user_id),
        "exp": issued + ttl, "nbf": issued, "iat": issued, "jti": str(uuid.uuid4()),
        "sid": hashlib.sha256(f"{shop}:{user_id}".encode()).hexdigest()[:32],
    }
    return jwt.encode(claims, app["api_secret"], algorithm="HS256")


@dataclass(frozen=True)
class Authorization:
    redirect_to: str


def authorize(store: DevStore, shop: str, params: dict[str, str]) -> Authorization:
    """Validate an authorize request and approve it: install the app, redirect with a code."""
    api_key = params.get("client_id", "")
    app = store.app(api_key)
    if app is None:
        raise OAuthError(400, "invalid_request", "Oauth error invalid_request: The client_id is invalid")
    redirect_uri = params.get("redirect_uri", "")
    allowed = json.loads(app["redirect_urls"]) or [app["app_url"]]
    if not any(redirect_uri.startswith(prefix) for prefix in allowed):
        raise OAuthError(400, "invalid_request",
                         "Oauth error invalid_request: The redirect_uri is not whitelisted")
    scopes = _parse_scopes(params.get("scope", ""))
    code = secrets.token_hex(16)
    now = utcnow()
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO oauth_codes (code, shop, api_key, scopes, expires_at) VALUES (?, ?, ?, ?, ?)",
            (code, shop, api_key, ",".join(sorted(scopes)), iso(now + CODE_TTL)),
        )
    query = signed_params(shop, app["api_secret"], code=code, state=params.get("state", ""))
    return Authorization(redirect_to=f"{redirect_uri}?{urlencode(query)}")


def access_token(store: DevStore, config: DevstoreConfig, shop: str, form: dict[str, str]) -> dict:
    """POST /admin/oauth/access_token: code grant, refresh grant or token exchange."""
    app = store.app(form.get("client_id", ""))
    if app is None or not hmac.compare_digest(form.get("client_secret", ""), app["api_secret"]):
        raise OAuthError(400, "invalid_client", "Client credentials are invalid")
    grant = form.get("grant_type", "authorization_code")
    expiring = form.get("expiring") in ("1", "true", 1, True)
    if grant == "refresh_token":
        return _refresh(store, config, shop, app, form.get("refresh_token", ""))
    if grant == TOKEN_EXCHANGE:
        return _exchange(store, config, shop, app, form, expiring)
    if grant != "authorization_code" or "code" not in form:
        raise OAuthError(400, "invalid_request", "The grant_type or code is missing or invalid")
    return _code_grant(store, config, shop, app, form["code"], expiring)


def uninstall(store: DevStore, shop: str, api_key: str) -> bool:
    """The merchant removes the app: tokens revoked, its web pixel removed, app/uninstalled delivered."""
    with store.tx() as conn:
        changed = conn.execute(
            "UPDATE installations SET uninstalled_at = ? WHERE shop = ? AND api_key = ? AND uninstalled_at IS NULL",
            (iso(utcnow()), shop, api_key),
        ).rowcount
        conn.execute("UPDATE tokens SET revoked = 1 WHERE shop = ? AND api_key = ?", (shop, api_key))
        # The app's web pixel goes with it: reinstalled, the app creates it again.
        conn.execute("DELETE FROM web_pixels WHERE shop = ? AND api_key = ?", (shop, api_key))
        if changed:
            store.emit(Event(shop, "app/uninstalled", "Shop", None, {"api_key": api_key}))
    return bool(changed)


def token_lookup(store: DevStore, shop: str, token: str) -> dict | None:
    """The installation an access token authenticates, or None (Shopify answers 401)."""
    row = store.conn().execute(
        "SELECT t.api_key, t.expires_at, t.revoked, i.scopes FROM tokens t JOIN installations i "
        "ON i.shop = t.shop AND i.api_key = t.api_key AND i.uninstalled_at IS NULL "
        "WHERE t.token = ? AND t.shop = ? AND t.kind = 'access'",
        (token, shop),
    ).fetchone()
    if row is None or row["revoked"]:
        return None
    if row["expires_at"] and parse_iso(row["expires_at"]) <= utcnow():
        return None
    return {"api_key": row["api_key"], "scopes": set(row["scopes"].split(",")) - {""}}


# -- grants ------------------------------------------------------------------------------------
def _code_grant(store, config, shop, app, code, expiring) -> dict:
    with store.tx() as conn:
        row = conn.execute("SELECT * FROM oauth_codes WHERE code = ? AND shop = ? AND api_key = ?",
                           (code, shop, app["api_key"])).fetchone()
        if row is None or row["used"] or parse_iso(row["expires_at"]) <= utcnow():
            raise OAuthError(400, "invalid_request",
                             "The authorization code was not found or was already used")
        conn.execute("UPDATE oauth_codes SET used = 1 WHERE code = ?", (code,))
        _install(conn, shop, app["api_key"], row["scopes"])
        return _issue(conn, config, shop, app["api_key"], row["scopes"], expiring)


def _refresh(store, config, shop, app, refresh_token) -> dict:
    now = utcnow()
    with store.tx() as conn:
        row = conn.execute(
            "SELECT * FROM tokens WHERE token = ? AND shop = ? AND api_key = ? AND kind = 'refresh'",
            (refresh_token, shop, app["api_key"]),
        ).fetchone()
        if row is None or row["revoked"] or parse_iso(row["expires_at"]) <= now:
            raise OAuthError(400, "invalid_grant", "The refresh token is invalid or has expired")
        if row["replaced_by"]:
            # A replaced token is honoured only until its successor has been used (or 30 days).
            successor = conn.execute("SELECT first_used_at FROM tokens WHERE token = ?",
                                     (row["replaced_by"],)).fetchone()
            if successor["first_used_at"] or parse_iso(row["first_used_at"]) + REFRESH_GRACE <= now:
                raise OAuthError(400, "invalid_grant", "The refresh token has already been used")
        install = conn.execute("SELECT scopes FROM installations WHERE shop = ? AND api_key = ? "
                               "AND uninstalled_at IS NULL", (shop, app["api_key"])).fetchone()
        if install is None:
            raise OAuthError(400, "invalid_grant", "The app is not installed on this shop")
        issued = _issue(conn, config, shop, app["api_key"], install["scopes"], True)
        conn.execute("UPDATE tokens SET first_used_at = COALESCE(first_used_at, ?), replaced_by = ? "
                     "WHERE token = ?", (iso(now), issued["refresh_token"], refresh_token))
        return issued


def _exchange(store, config, shop, app, form, expiring) -> dict:
    if form.get("subject_token_type") != ID_TOKEN_TYPE:
        raise OAuthError(400, "invalid_request", "subject_token_type must be an id_token")
    if form.get("requested_token_type", OFFLINE_TYPE) != OFFLINE_TYPE:
        raise OAuthError(400, "invalid_request", "Only offline access tokens are supported by devstore")
    try:
        claims = jwt.decode(form.get("subject_token", ""), app["api_secret"], algorithms=["HS256"],
                            audience=app["api_key"], leeway=10, options={"require": ["exp", "dest"]})
    except jwt.PyJWTError:
        raise OAuthError(400, "invalid_subject_token", "Invalid subject token") from None
    if urlsplit(claims["dest"]).hostname != shop:
        raise OAuthError(400, "invalid_subject_token", "Invalid subject token")
    with store.tx() as conn:
        existing = conn.execute("SELECT scopes FROM installations WHERE shop = ? AND api_key = ?",
                                (shop, app["api_key"])).fetchone()
        scopes = existing["scopes"] if existing else MANAGED_INSTALL_SCOPES
        _install(conn, shop, app["api_key"], scopes)
        return _issue(conn, config, shop, app["api_key"], scopes, expiring)


# A Shopify-managed install grants the scopes the app's configuration asks for (shopify.app.toml).
MANAGED_INSTALL_SCOPES = ("read_customers,write_customers,read_orders,read_products,write_pixels,read_customer_events,"
                          "write_app_proxy,read_discounts,write_discounts")


def _install(conn, shop: str, api_key: str, scopes: str) -> None:
    conn.execute(
        "INSERT INTO installations (shop, api_key, scopes, installed_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(shop, api_key) DO UPDATE SET scopes = excluded.scopes, "
        "installed_at = CASE WHEN installations.uninstalled_at IS NULL THEN installations.installed_at "
        "ELSE excluded.installed_at END, uninstalled_at = NULL",
        (shop, api_key, scopes, iso(utcnow())),
    )


def _issue(conn, config: DevstoreConfig, shop: str, api_key: str, scopes: str, expiring: bool) -> dict:
    now = utcnow()
    access = "shpat_" + secrets.token_hex(16)
    granted = ",".join(s for s in scopes.split(",") if s)
    expires = iso(now + dt.timedelta(seconds=config.access_token_ttl)) if expiring else None
    conn.execute("INSERT INTO tokens (token, shop, api_key, kind, scopes, expires_at, created_at) "
                 "VALUES (?, ?, ?, 'access', ?, ?, ?)", (access, shop, api_key, granted, expires, iso(now)))
    body = {"access_token": access, "scope": granted}
    if expiring:
        refresh = "shprt_" + secrets.token_hex(16)
        conn.execute("INSERT INTO tokens (token, shop, api_key, kind, scopes, expires_at, created_at) "
                     "VALUES (?, ?, ?, 'refresh', ?, ?, ?)",
                     (refresh, shop, api_key, granted,
                      iso(now + dt.timedelta(seconds=config.refresh_token_ttl)), iso(now)))
        body.update(expires_in=config.access_token_ttl, refresh_token=refresh,
                    refresh_token_expires_in=config.refresh_token_ttl)
    return body


def _parse_scopes(raw: str) -> set[str]:
    scopes = {s.strip() for s in raw.split(",") if s.strip()}
    unknown = scopes - KNOWN_SCOPES
    if unknown:
        raise OAuthError(400, "invalid_scope", f"Oauth error invalid_scope: {', '.join(sorted(unknown))}")
    return scopes


def _app(store: DevStore, api_key: str):
    app = store.app(api_key)
    if app is None:
        raise OAuthError(404, "not_found", f"No app with api_key {api_key!r} is registered")
    return app
