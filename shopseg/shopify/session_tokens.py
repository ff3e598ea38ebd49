"""Verify App Bridge session tokens (HS256 JWTs signed with the app secret)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
from shopify import session_token as shopify_session_token

from .domains import normalize_shop_domain

LEEWAY_SECONDS = 10


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


def session_token_decode(token: str, *, api_key: str, secrets: list[str]) -> SessionClaims:
    """Decode and verify a session token against the current (then previous) app secret.

    shopifyapi's `decode_from_header` checks the signature, `aud`, `nbf`/`exp` with 10 s leeway
    and that `iss` and `dest` name the same shop; it does not require `exp`, so we do.
    """
    if not token:
        raise SessionTokenInvalid("missing session token")
    last_error: Exception | None = None
    for secret in (s for s in secrets if s):
        try:
            claims = shopify_session_token.decode_from_header(f"Bearer {token}", api_key, secret)
            break
        except shopify_session_token.SessionTokenError as exc:
            last_error = exc
    else:
        expired = isinstance(getattr(last_error, "__cause__", None), jwt.ExpiredSignatureError)
        raise SessionTokenInvalid(str(last_error or "no secret configured"), expired=expired)
    try:
        jwt.decode(token, options={"verify_signature": False, "require": ["exp", "nbf"]})
    except jwt.PyJWTError as exc:
        raise SessionTokenInvalid(str(exc)) from None
    shop = normalize_shop_domain(urlsplit(claims["dest"]).hostname or "")
    if shop is None or urlsplit(claims["dest"]).scheme != "https":
        raise SessionTokenInvalid("dest is not a valid shop")
    return SessionClaims(shop=shop, user_id=claims.get("sub"), session_id=claims.get("sid"),
                         expires_at=int(claims["exp"]), raw=claims)
