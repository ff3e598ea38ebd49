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
    """The signed message: every parameter but hmac/signature, sorted, `k=v` joined with `&`.

    `params` maps each key to all its values (Django's `request.GET.lists()`). Array keys
    (`ids[]`) are signed as Shopify's libraries do: `ids=["1", "2"]`.
    """
    parts = []
    for key, values in params.items():
        if key in IGNORED:
            continue
        if key.endswith("[]"):
            rendered = "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"
            parts.append((key[:-2], rendered))
        else:
            parts.append((key, values[-1] if values else ""))
    return "&".join(f"{k}={v}" for k, v in sorted(parts))


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
