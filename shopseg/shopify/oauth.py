"""OAuth against a shop: the authorize URL and the three grants of the access-token endpoint.

Offline tokens are always requested as expiring (`expiring=1`): a ~60 minute access token plus a
rotating refresh token, which Shopify requires of public apps.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from .errors import OAuthGrantError, ShopifyTransientError

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    scopes: tuple[str, ...]
    expires_at: dt.datetime | None
    refresh_token: str | None
    refresh_expires_at: dt.datetime | None


def authorize_url(base_url: str, *, api_key: str, scopes: str, redirect_uri: str, state: str) -> str:
    query = urlencode({"client_id": api_key, "scope": scopes, "redirect_uri": redirect_uri, "state": state})
    return f"{base_url}/admin/oauth/authorize?{query}"


class OAuthClient:
    """Token requests for one shop. `base_url` is https://{shop} or devstore's shop URL."""

    def __init__(self, base_url: str, *, api_key: str, api_secret: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self._url = f"{base_url}/admin/oauth/access_token"
        self._credentials = {"client_id": api_key, "client_secret": api_secret}
        self._timeout, self._transport = timeout, transport

    def exchange_code(self, code: str) -> TokenSet:
        return self._grant({"code": code, "expiring": "1"})

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def exchange_session_token(self, session_token: str) -> TokenSet:
        return self._grant({"grant_type": TOKEN_EXCHANGE, "subject_token": session_token,
                            "subject_token_type": ID_TOKEN, "requested_token_type": OFFLINE_TOKEN,
                            "expiring": "1"})

    def _grant(self, fields: dict[str, str]) -> TokenSet:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as http:
                response = http.post(self._url, data={**self._credentials, **fields},
                                     headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ShopifyTransientError(f"token endpoint unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise ShopifyTransientError(f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            raise OAuthGrantError(response.status_code, str(body.get("error", "invalid_response")),
                                  str(body.get("error_description", ""))[:200])
        return _token_set(body, now)


def _token_set(body: dict, now: dt.datetime) -> TokenSet:
    def after(seconds) -> dt.datetime | None:
        return now + dt.timedelta(seconds=int(seconds)) if seconds else None

    return TokenSet(
        access_token=body["access_token"],
        scopes=tuple(s for s in str(body.get("scope", "")).split(",") if s),
        expires_at=after(body.get("expires_in")),
        refresh_token=body.get("refresh_token"),
        refresh_expires_at=after(body.get("refresh_token_expires_in")),
    )
