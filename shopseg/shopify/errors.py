"""Narrow exceptions for talking to Shopify: retry the transient, stop on auth, fix the query."""
from __future__ import annotations


class ShopifyError(Exception):
    """Base class for every error raised by shopseg.shopify."""


class ShopifyTransientError(ShopifyError):
    """Throttled, 429, 5xx or a network failure: safe to retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, cost: dict | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.cost = cost


class ShopifyAuthError(ShopifyError):
    """401/403: the token is expired, revoked or lacks a scope. Refresh once, then give up."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


class ShopifyQueryError(ShopifyError):
    """The query itself is wrong (syntax, validation, access denied to a field): a bug, not a retry."""

    def __init__(self, errors: list | dict | str):
        super().__init__(str(errors)[:500])
        self.errors = errors


class OAuthGrantError(ShopifyError):
    """The token endpoint refused a grant (bad code, spent refresh token, invalid subject token)."""

    def __init__(self, status: int, error: str, description: str = ""):
        super().__init__(f"{status} {error}: {description}")
        self.status, self.error, self.description = status, error, description
