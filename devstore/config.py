"""devstore's run-time knobs, shared by the server, the GraphQL layer and the webhook sender."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DevstoreConfig:
    public_url: str = "http://127.0.0.1:8765"   # how the app reaches devstore (no trailing slash)
    time_scale: float = 1.0          # webhook retry delays are multiplied by this (tests use ~0.001)
    restore_multiplier: float = 1.0  # scales plan restore rates and bucket sizes (benchmarks only)
    access_token_ttl: int = 3600     # seconds; expiring offline access token
    refresh_token_ttl: int = 90 * 24 * 3600
    auto_approve: bool = True        # headless installs: authorize redirects without a consent click
    webhook_timeout: float = 5.0     # seconds the app has to answer a delivery
    webhook_max_attempts: int = 9    # first try plus 8 retries, as on Shopify
    webhook_failures_before_removal: int = 8

    def shop_base_url(self, shop: str) -> str:
        return f"{self.public_url}/shops/{shop}"
