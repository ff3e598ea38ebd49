"""A small GraphQL Admin API client, one per shop, with no module state.

Every response's `extensions.cost.throttleStatus` is kept on the client so callers (and the
shared per-shop throttle) can pace themselves from Shopify's own figures. A response served in
another API version than the one asked for (Shopify falls forward from an unsupported version),
or marked X-Shopify-API-Deprecated-Reason, is logged as a warning, once an hour per shop and kind.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx

from .errors import ShopifyAuthError, ShopifyQueryError, ShopifyTransientError

log = logging.getLogger(__name__)
API_WARN_EVERY = 3600.0
# (base URL, version served, deprecation reason) -> when this process last warned: a log throttle only
_api_warned: dict[tuple[str, str, str], float] = {}


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float

    def wait_for(self, needed: float) -> float:
        """Seconds until `needed` points are available: (needed - available) / restoreRate."""
        return max(0.0, needed - self.currently_available) / self.restore_rate if self.restore_rate else 1.0


@dataclass(frozen=True)
class GraphQLResult:
    data: dict
    requested_cost: float | None
    actual_cost: float | None
    throttle: ThrottleStatus | None


def throttle_status(cost: dict | None) -> ThrottleStatus | None:
    """The throttleStatus of an `extensions.cost`; None when Shopify sent none."""
    status = (cost or {}).get("throttleStatus")
    if not status:
        return None
    return ThrottleStatus(float(status["maximumAvailable"]), float(status["currentlyAvailable"]),
                          float(status["restoreRate"]))


class ShopClient:
    """GraphQL for one shop: base URL (https://{shop} or devstore's), token, API version."""

    def __init__(self, *, base_url: str, token: str, api_version: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"X-Shopify-Access-Token": token, "Accept": "application/json"})
        self._path = f"/admin/api/{api_version}/graphql.json"
        self._api_version = api_version
        self.last_throttle: ThrottleStatus | None = None

    def __enter__(self) -> ShopClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def graphql(self, query: str, variables: dict | None = None) -> GraphQLResult:
        try:
            response = self._http.post(self._path, json={"query": query, "variables": variables or {}})
        except httpx.HTTPError as exc:
            raise ShopifyTransientError(f"network error: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise ShopifyAuthError(f"Shopify answered {response.status_code}", status=response.status_code)
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After")
            raise ShopifyTransientError(f"Shopify answered {response.status_code}",
                                        retry_after=float(retry_after) if retry_after else None)
        self._api_notice(response)
        try:
            body = response.json()
        except ValueError:
            raise ShopifyTransientError(f"non-JSON answer with status {response.status_code}") from None
        if response.status_code != 200:
            raise ShopifyQueryError(body.get("errors", body) if isinstance(body, dict) else body)
        cost = (body.get("extensions") or {}).get("cost")
        throttle = throttle_status(cost)
        if throttle:
            self.last_throttle = throttle
        errors = body.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors if isinstance(e, dict)):
            needed = float((cost or {}).get("requestedQueryCost") or 0)
            wait = throttle.wait_for(needed) if throttle else 1.0
            raise ShopifyTransientError("throttled", retry_after=wait, cost=cost)
        if errors:
            raise ShopifyQueryError(errors)
        return GraphQLResult(data=body.get("data") or {}, requested_cost=(cost or {}).get("requestedQueryCost"),
                             actual_cost=(cost or {}).get("actualQueryCost"), throttle=throttle)

    def _api_notice(self, response: httpx.Response) -> None:
        served = response.headers.get("X-Shopify-API-Version", "")
        reason = response.headers.get("X-Shopify-API-Deprecated-Reason", "")
        if not reason and (not served or served == self._api_version):
            return
        key, now = (str(self._http.base_url), served, reason), time.monotonic()
        if now - _api_warned.get(key, -API_WARN_EVERY) < API_WARN_EVERY:
            return
        _api_warned[key] = now
        log.warning("Shopify (%s) answered in API version %s to a request for %s%s", self._http.base_url.host,
                    served or "(not said)", self._api_version,
                    f"; deprecated: {reason}" if reason else "")
