"""Verify App Bridge session tokens (HS256 JWTs signed with the app secret)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import jwt
from shopify_app import verify_app_home_req

from .domains import normalize_shop_domain

LEEWAY_SECONDS = 10   # shopifyapp's, as every official library's: App Bridge can send an early nbf
# shopifyapi's decode_from_header required these (sub included: a token without a staff user is
# refused), and shopifyapp requires none; exp and nbf are ours, so a token cannot live forever.
REQUIRED_CLAIMS = ("iss", "dest", "sub", "jti", "sid", "exp", "nbf")
# verify_app_home_req takes a request; only its Authorization header is read for a fetch request.
_REQUEST_URL = "https://app.invalid/"
_PATCH_PATH = "/"


class SessionTokenInvalid(Exception):
    """The token is missing, forged, expired, for another app, or names an invalid shop."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message)
        self.expired = expired  # only expiry is worth a silent retry with a fresh token


@dataclass(frozen=True)
class SessionClaims:
    shop: str
    user_id: str | None
    session_id: str | None
    expires_at: int
    raw: dict


def _signed_claims(token: str, *, api_key: str, secrets: list[str]) -> dict:
    """The claims of a token one of `secrets` signed (HS256, `aud`, exp/nbf with leeway), by shopifyapp.

    Each secret is tried on its own so an expired token signed with the previous secret during a
    rotation still reads as expired (shopifyapp, given both, reports the last failure: a bad signature).
    """
    codes = []
    for secret in (s for s in secrets if s):
        result = verify_app_home_req(
            {"method": "GET", "url": _REQUEST_URL, "headers": {"Authorization": f"Bearer {token}"}, "body": ""},
            {"client_id": api_key, "client_secret": secret, "old_client_secret": None}, _PATCH_PATH)
        if result.ok and result.id_token is not None:
            return result.id_token.claims
        codes.append(result.log.code)
    if not codes:
        raise SessionTokenInvalid("no secret configured")
    expired = "expired_id_token" in codes
    raise SessionTokenInvalid("expired_id_token" if expired else codes[-1], expired=expired)


def session_token_decode(token: str, *, api_key: str, secrets: list[str]) -> SessionClaims:
    """Decode and verify a session token against the current (then previous) app secret.

    shopifyapp checks the signature, `aud` and `nbf`/`exp` with 10 s leeway; the rest is ours: the
    claims Shopify always sends are required (exp above all), `iss` and `dest` name the same
    https origin, and that origin is a valid shop.
    """
    if not token:
        raise SessionTokenInvalid("missing session token")
    claims = _signed_claims(token, api_key=api_key, secrets=secrets)
    missing = [name for name in REQUIRED_CLAIMS if claims.get(name) is None]
    if missing:
        raise SessionTokenInvalid(f"missing claims: {', '.join(missing)}")
    try:  # shopifyapp leaves the types of exp and nbf to PyJWT, which checks them only when present
        jwt.decode(token, options={"verify_signature": False, "require": ["exp", "nbf"]})
    except jwt.PyJWTError as exc:
        raise SessionTokenInvalid(str(exc)) from None
    iss, dest = str(claims["iss"]), str(claims["dest"])
    if urljoin(iss, "/") != urljoin(dest, "/"):
        raise SessionTokenInvalid("iss and dest name different shops")
    shop = normalize_shop_domain(urlsplit(dest).hostname or "")
    if shop is None or urlsplit(dest).scheme != "https":
        raise SessionTokenInvalid("dest is not a valid shop")
    return SessionClaims(shop=shop, user_id=claims.get("sub"), session_id=claims.get("sid"),
                         expires_at=int(claims["exp"]), raw=claims)
