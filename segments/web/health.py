"""The data feed's health as the pages show it. The deliveries are the webhooks app's, which
depends on segments and not the reverse: it registers the reader (webhooks.health) at start-up."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class WebhookHealth:
    failed: int          # gave up after every retry
    retrying: int        # failed at least once, will be tried again
    waiting: int         # recorded, not processed yet
    last_error: str      # the newest failure's error (exception type and message; no payload)


_reader: Callable[..., WebhookHealth] | None = None


def register_webhook_health(fn: Callable[..., WebhookHealth]) -> None:
    """Set the reader: fn(*, shop_domain) -> WebhookHealth."""
    global _reader
    _reader = fn


def webhook_health(*, shop_domain: str) -> WebhookHealth:
    if _reader is None:
        raise RuntimeError("no webhook health reader registered (is the webhooks app installed?)")
    return _reader(shop_domain=shop_domain)
