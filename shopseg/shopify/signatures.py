"""Shopify's two HMAC signatures: hex over OAuth query strings, base64 over webhook bodies.

Both compare in constant time and accept several secrets, so a secret can be rotated while
Shopify still signs with the old one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence

IGNORED = ("hmac", "signature")


def query_message(params: Mapping[str, Sequence[str]]) -> str:
    """The signed message: every parameter but hmac/signature as an escaped `k=v`, sorted, joined with `&`.

    `params` maps each key to all its values (Django's `request.GET.lists()`). Array keys
    (`ids[]`) are signed as Shopify's libraries do: `ids=["1", "2"]`. The delimiters are escaped
    as Shopify escapes them (`%` → `%25`, `=` in a key → `%3D`, `&` → `%26`), so a value holding
    `&host=…` cannot stand for another parameter, and a genuine value with `%` or `&` verifies.
    """
    pairs = []
    for key, values in params.items():
        if key in IGNORED:
            continue
        if key.endswith("[]"):
            pairs.append(_pair(key[:-2], "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"))
        else:
            pairs.append(_pair(key, values[-1] if values else ""))
    return "&".join(sorted(pairs))


def _pair(key: str, value: str) -> str:
    key = key.replace("%", "%25").replace("=", "%3D")
    return f"{key}={value.replace('%', '%25')}".replace("&", "%26")


def query_hmac(params: Mapping[str, Sequence[str]], secret: str) -> str:
    return hmac.new(secret.encode(), query_message(params).encode(), hashlib.sha256).hexdigest()


def query_hmac_valid(params: Mapping[str, Sequence[str]], secrets: Iterable[str]) -> bool:
    given = (params.get("hmac") or [""])[-1]
    if not given:
        return False
    return any(hmac.compare_digest(query_hmac(params, s).encode(), given.encode()) for s in secrets if s)


def webhook_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_hmac_valid(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    if not header:
        return False
    return any(hmac.compare_digest(webhook_hmac(body, s).encode(), header.encode()) for s in secrets if s)
